#include "semrec/rerank.hpp"

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

void register_rerank(py::module_& m) {
  m.def(
      "mmr",
      [](const CArray<std::int32_t>& ids, const CArray<float>& relevance,
         const CArray<float>& embeddings, int k, double lambda, ThreadCount num_threads) {
        if (ids.ndim() != 2 || relevance.ndim() != 2 || ids.shape(0) != relevance.shape(0) ||
            ids.shape(1) != relevance.shape(1)) {
          throw std::invalid_argument("ids and relevance must be 2-D arrays of the same shape");
        }
        if (k < 1) throw std::invalid_argument("k must be >= 1");
        const CandidateView c{ids.data(), relevance.data(), ids.shape(0), ids.shape(1)};
        const MatrixView e = matrix_view(embeddings, "embeddings");
        const std::int64_t rows = c.rows, width = k;
        CArray<std::int32_t> out_ids({rows, width});
        CArray<float> out_rel({rows, width});
        CArray<std::int32_t> out_pos({rows, width});
        const RerankOutput out{out_ids.mutable_data(), out_rel.mutable_data(),
                               out_pos.mutable_data()};
        without_gil([&](const StopCheck& stop) { mmr(c, e, k, lambda, num_threads, out, stop); });
        return py::make_tuple(out_ids, out_rel, out_pos);
      },
      py::arg("ids").noconvert(), py::arg("relevance").noconvert(),
      py::arg("embeddings").noconvert(), py::arg("k"), py::arg("lambda_"), py::arg("num_threads"),
      "MMR re-ranking of candidate lists; returns (ids, relevance, positions). See "
      "semrec.rerank.diversify.");
}

}  // namespace semrec::bindings
