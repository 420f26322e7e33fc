// TextCF trainer and graph propagation bindings for semrec._text. Validation with user-facing
// messages lives in python/semrec/textcf/; the GIL is released around training and propagation.
#include "semrec/train/textcf.hpp"

#include "bindings/common.hpp"
#include "bindings/register.hpp"
#include "semrec/train/propagation.hpp"

namespace semrec::bindings {

using train::NamedArray;
using train::TextCFConfig;
using train::TextCFTrainer;
using train::TrainingPairs;

namespace {

TrainingPairs pairs_of(const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
                       std::int64_t users, std::int64_t items) {
  if (indptr.ndim() != 1 || indices.ndim() != 1 || indptr.shape(0) != users + 1) {
    throw std::invalid_argument("indptr must be 1-D with users + 1 entries, indices 1-D");
  }
  if (indptr.data()[users] != indices.shape(0)) {
    throw std::invalid_argument("indptr does not match indices");
  }
  return {indptr.data(), indices.data(), users, items};
}

std::vector<NamedArray> named_arrays(const py::dict& arrays) {
  std::vector<NamedArray> out;
  for (const auto& [key, value] : arrays) {
    const auto a = value.cast<CArray<float>>();
    std::vector<std::int64_t> shape(a.shape(), a.shape() + a.ndim());
    out.push_back(
        {key.cast<std::string>(), shape, std::vector<float>(a.data(), a.data() + a.size())});
  }
  return out;
}

py::dict to_dict(const std::vector<NamedArray>& arrays) {
  py::dict out;
  for (const auto& a : arrays) {
    CArray<float> array(a.shape);
    std::copy(a.values.begin(), a.values.end(), array.mutable_data());
    out[py::str(a.name)] = array;
  }
  return out;
}

}  // namespace

void register_textcf(py::module_& m) {
  py::class_<TextCFTrainer>(m, "TextCFTrainer")
      .def(py::init([](const CArray<float>& inputs, const CArray<std::int64_t>& indptr,
                       const CArray<std::int32_t>& indices, std::int64_t users, std::int64_t items,
                       const py::dict& weights, std::int64_t hidden, std::int64_t factors,
                       double negative_slope, std::int64_t layers, double tau,
                       std::int64_t negatives, std::int64_t batch_size, double learning_rate,
                       double weight_decay, std::uint64_t seed, std::int64_t score_block,
                       const std::optional<CArray<float>>& values, bool item_bias) {
             if (inputs.ndim() != 2 || inputs.shape(0) != users + items) {
               throw std::invalid_argument("inputs must be (users + items) x dim");
             }
             TrainingPairs pairs = pairs_of(indptr, indices, users, items);
             if (values) {
               if (values->ndim() != 1 || values->shape(0) != indices.shape(0)) {
                 throw std::invalid_argument("values must have one weight per index");
               }
               pairs.values = values->data();
             }
             const auto initial = named_arrays(weights);
             TextCFConfig cfg{hidden,       factors,   negative_slope, layers,
                              tau,          negatives, batch_size,     learning_rate,
                              weight_decay, seed,      score_block,    values.has_value(),
                              item_bias};
             py::gil_scoped_release release;
             return std::make_unique<TextCFTrainer>(cfg, inputs.data(), inputs.shape(1), pairs,
                                                    initial);
           }),
           py::arg("inputs").noconvert(), py::arg("indptr").noconvert(),
           py::arg("indices").noconvert(), py::arg("users"), py::arg("items"), py::arg("weights"),
           py::arg("hidden"), py::arg("factors"), py::arg("negative_slope"), py::arg("layers"),
           py::arg("tau"), py::arg("negatives"), py::arg("batch_size"), py::arg("learning_rate"),
           py::arg("weight_decay"), py::arg("seed"), py::arg("score_block") = std::int64_t{1} << 24,
           py::arg("values") = py::none(), py::arg("item_bias") = false,
           "With values (the interaction weights), users' inputs are the weighted means of "
           "their items' and their rows of inputs are not read. With item_bias, weights "
           "include bias.weight and every logit gains its item's bias.")
      .def(
          "epoch",
          [](TextCFTrainer& t, std::int64_t epoch_index) {
            double loss = 0.0;
            without_gil([&](const StopCheck& stop) { loss = t.epoch(epoch_index, stop); });
            return loss;
          },
          py::arg("epoch_index"))
      .def(
          "batch_gradients",
          [](TextCFTrainer& t, const CArray<std::int32_t>& users, const CArray<std::int32_t>& items,
             const CArray<std::int32_t>& negatives) {
            const std::int64_t n = users.size();
            if (users.ndim() != 1 || items.ndim() != 1 || items.size() != n ||
                negatives.ndim() != 2 || negatives.shape(0) != n) {
              throw std::invalid_argument("users, items (n) and negatives (n x k) disagree");
            }
            std::vector<NamedArray> grads;
            double loss = 0.0;
            {
              py::gil_scoped_release release;
              loss = t.batch_gradients(users.data(), items.data(), n, negatives.data(), grads);
            }
            return py::make_tuple(loss, to_dict(grads));
          },
          py::arg("users").noconvert(), py::arg("items").noconvert(),
          py::arg("negatives").noconvert())
      .def(
          "vectors",
          [](const TextCFTrainer& t, std::int64_t layers) -> py::object {
            CArray<float> out({t.nodes(), t.factors()});
            float* out_ptr = out.mutable_data();
            if (layers < 0) {
              py::gil_scoped_release release;
              t.vectors(out_ptr);
              return std::move(out);
            }
            CArray<float> per_layer({layers + 1, t.nodes(), t.factors()});
            float* layer_ptr = per_layer.mutable_data();
            {
              py::gil_scoped_release release;
              t.vectors(out_ptr, layer_ptr);
            }
            return py::make_tuple(out, per_layer);
          },
          py::arg("layers") = -1,
          "Node vectors; with layers >= 0 (the trainer's own count) also each layer's output.")
      .def("item_biases",
           [](const TextCFTrainer& t) {
             if (!t.item_bias()) throw std::invalid_argument("the trainer has no item bias");
             CArray<float> out({t.items()});
             float* ptr = out.mutable_data();
             {
               py::gil_scoped_release release;
               t.item_biases(ptr);
             }
             return out;
           })
      .def("parameters", [](const TextCFTrainer& t) { return to_dict(t.parameters()); })
      .def(
          "set_parameters",
          [](TextCFTrainer& t, const py::dict& weights) {
            t.set_parameters(named_arrays(weights));
          },
          py::arg("weights"))
      .def_property_readonly("positives", &TextCFTrainer::positives);

  py::class_<train::BipartiteGraph>(m, "TextCFGraph")
      .def(py::init([](const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
                       std::int64_t users, std::int64_t items) {
             const TrainingPairs p = pairs_of(indptr, indices, users, items);
             py::gil_scoped_release release;
             return std::make_unique<train::BipartiteGraph>(p.indptr, p.indices, users, items);
           }),
           py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("users"),
           py::arg("items"))
      .def(
          "propagate",
          [](const train::BipartiteGraph& graph, const CArray<float>& x, std::int64_t layers) {
            if (x.ndim() != 2 || x.shape(0) != graph.nodes()) {
              throw std::invalid_argument("x must be (users + items) x dim");
            }
            CArray<float> out({x.shape(0), x.shape(1)});
            float* out_ptr = out.mutable_data();
            {
              py::gil_scoped_release release;
              graph.propagate(x.data(), x.shape(1), layers, out_ptr);
            }
            return out;
          },
          py::arg("x").noconvert(), py::arg("layers"),
          "Mean of the layer outputs of LightGCN propagation over this graph (built once).");
}

}  // namespace semrec::bindings
