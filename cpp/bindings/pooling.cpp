#include "semrec/text/pooling.hpp"

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

void register_pooling(py::module_& m) {
  m.def(
      "mean_pool",
      [](const CArray<float>& hidden, const CArray<std::int64_t>& lengths, bool normalize) {
        if (hidden.ndim() != 3) throw std::invalid_argument("hidden must be 3-D");
        if (lengths.ndim() != 1 || lengths.shape(0) != hidden.shape(0)) {
          throw std::invalid_argument("lengths must be 1-D with one entry per sequence");
        }
        const std::int64_t n = hidden.shape(0), seq_len = hidden.shape(1), dim = hidden.shape(2);
        CArray<float> out({n, dim});
        float* out_ptr = out.mutable_data();
        {
          py::gil_scoped_release release;
          text::mean_pool(hidden.data(), n, seq_len, dim, lengths.data(), normalize, out_ptr);
        }
        return out;
      },
      py::arg("hidden").noconvert(), py::arg("lengths").noconvert(), py::arg("normalize"),
      "Masked mean pooling in LibTorch; see semrec.text.pooling.mean_pool.");
  m.def("torch_num_threads", &text::torch_num_threads);
  m.def("set_torch_num_threads", &text::set_torch_num_threads, py::arg("n"));
}

}  // namespace semrec::bindings
