// TextCF trainer, graph propagation and encoder tuning bindings for semrec._text. Validation
// with user-facing messages lives in python/semrec/textcf/ and python/semrec/text/_tuning.py; the
// GIL is released around training and propagation.
#include "semrec/train/textcf.hpp"

#include "bindings/common.hpp"
#include "bindings/register.hpp"
#include "semrec/train/encoder_tuning.hpp"
#include "semrec/train/propagation.hpp"

namespace semrec::bindings {

using train::EncoderTuner;
using train::EncoderTuningConfig;
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

CArray<std::int32_t> to_array(const std::vector<std::int32_t>& v) {
  CArray<std::int32_t> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
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
                       const std::optional<CArray<float>>& values, bool item_bias,
                       bool shared_negatives) {
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
             TextCFConfig cfg{hidden,
                              factors,
                              negative_slope,
                              layers,
                              tau,
                              negatives,
                              batch_size,
                              learning_rate,
                              weight_decay,
                              seed,
                              score_block,
                              values.has_value(),
                              item_bias,
                              shared_negatives};
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
           py::arg("shared_negatives") = false,
           "With values (the interaction weights), users' inputs are the weighted means of "
           "their items' and their rows of inputs are not read. With item_bias, weights "
           "include bias.weight and every logit gains its item's bias. With shared_negatives, "
           "each batch draws its negatives once for all its positives.")
      .def(
          "epoch",
          [](TextCFTrainer& t, std::int64_t epoch_index, std::optional<py::function> progress) {
            double loss = 0.0;
            const train::BatchProgress report = throttled(progress);  // progress(positives_done)
            without_gil([&](const StopCheck& stop) { loss = t.epoch(epoch_index, stop, report); });
            return loss;
          },
          py::arg("epoch_index"), py::arg("progress") = py::none(),
          "One pass over the positives; progress(done) is told how many are done, between "
          "batches, at most every 100 ms.")
      .def(
          "batch_gradients",
          [](TextCFTrainer& t, const CArray<std::int32_t>& users, const CArray<std::int32_t>& items,
             const CArray<std::int32_t>& negatives) {
            const std::int64_t n = users.size();
            if (users.ndim() != 1 || items.ndim() != 1 || items.size() != n ||
                negatives.ndim() != 2 || negatives.shape(0) != n ||
                negatives.shape(1) != t.negatives()) {
              // the kernel reads n x negatives ids: a narrower array would be read past its end
              throw std::invalid_argument(
                  "users, items (n) and negatives (n x the trainer's negatives) disagree");
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

  py::class_<EncoderTuner>(m, "EncoderTuner")
      .def(py::init([](const py::dict& encoder, std::int64_t layers, const py::dict& mlp,
                       const CArray<std::int64_t>& offsets, const CArray<std::int32_t>& ids,
                       const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
                       const CArray<float>& values, std::int64_t users, std::int64_t items,
                       std::int64_t heads, double layer_norm_eps, std::int64_t tuned_layers,
                       std::int64_t hidden, std::int64_t factors, double negative_slope, double tau,
                       std::int64_t batch_size, double learning_rate, double mlp_learning_rate,
                       std::uint64_t seed, std::int64_t bucket, bool recompute, bool bf16,
                       std::int64_t items_per_step) {
             TrainingPairs pairs = pairs_of(indptr, indices, users, items);
             if (values.ndim() != 1 || values.shape(0) != indices.shape(0)) {
               throw std::invalid_argument("values must have one weight per index");
             }
             pairs.values = values.data();
             if (offsets.ndim() != 1 || offsets.shape(0) != items + 1 || ids.ndim() != 1 ||
                 offsets.data()[items] != ids.shape(0)) {
               throw std::invalid_argument("offsets (items + 1) and ids disagree");
             }
             const train::TokenIds tokens{offsets.data(), ids.data(), items};
             const auto weights = named_arrays(encoder);
             const auto network = named_arrays(mlp);
             EncoderTuningConfig cfg;
             cfg.heads = heads;
             cfg.layer_norm_eps = layer_norm_eps;
             cfg.tuned_layers = tuned_layers;
             cfg.hidden = hidden;
             cfg.factors = factors;
             cfg.negative_slope = negative_slope;
             cfg.tau = tau;
             cfg.batch_size = batch_size;
             cfg.learning_rate = learning_rate;
             cfg.mlp_learning_rate = mlp_learning_rate;
             cfg.seed = seed;
             cfg.bucket = bucket;
             cfg.recompute = recompute;
             cfg.bf16 = bf16;
             cfg.items_per_step = items_per_step;
             std::unique_ptr<EncoderTuner> tuner;
             without_gil([&](const StopCheck& stop) {
               tuner = std::make_unique<EncoderTuner>(cfg, weights, layers, network, tokens, pairs,
                                                      stop);
             });
             return tuner;
           }),
           py::arg("encoder"), py::arg("layers"), py::arg("mlp"), py::arg("offsets").noconvert(),
           py::arg("ids").noconvert(), py::arg("indptr").noconvert(),
           py::arg("indices").noconvert(), py::arg("values").noconvert(), py::arg("users"),
           py::arg("items"), py::arg("heads"), py::arg("layer_norm_eps"), py::arg("tuned_layers"),
           py::arg("hidden"), py::arg("factors"), py::arg("negative_slope"), py::arg("tau"),
           py::arg("batch_size"), py::arg("learning_rate"), py::arg("mlp_learning_rate"),
           py::arg("seed"), py::arg("bucket"), py::arg("recompute"), py::arg("bf16"),
           py::arg("items_per_step"),
           "Runs the frozen layers once (Ctrl-C honoured); encoder and mlp map names to float32 "
           "arrays.")
      .def(
          "step",
          [](EncoderTuner& t, std::int64_t epoch, std::int64_t step) {
            double loss = 0.0;
            without_gil([&](const StopCheck& stop) { loss = t.step(epoch, step, stop); });
            return loss;
          },
          py::arg("epoch"), py::arg("step"), "One Adam step; Ctrl-C honoured between chunks.")
      .def(
          "step_stopped_at",
          [](EncoderTuner& t, std::int64_t epoch, std::int64_t step, std::int64_t poll) {
            // Where Ctrl-C can land, made deterministic: the stop check answers "stop" at its
            // poll-th call (0: never), in place of Python's signal check.
            std::int64_t polls = 0;
            bool stopped = false;
            {
              py::gil_scoped_release release;
              try {
                t.step(epoch, step, [&] { return ++polls == poll; });
              } catch (const Interrupted&) {
                stopped = true;
              }
            }
            return py::make_tuple(polls, stopped);
          },
          py::arg("epoch"), py::arg("step"), py::arg("poll"),
          "step with the stop check answering yes at its poll-th call (0: never); returns "
          "(polls made, whether the step stopped).")
      .def_property_readonly("steps_per_epoch", &EncoderTuner::steps_per_epoch)
      .def(
          "batch_gradients",
          [](EncoderTuner& t, const CArray<std::int32_t>& users, const CArray<std::int32_t>& items,
             const std::optional<CArray<std::int32_t>>& fresh) {
            if (users.ndim() != 1 || items.ndim() != 1 || items.size() != users.size()) {
              throw std::invalid_argument("users and items must be 1-D of one length");
            }
            if (fresh && fresh->ndim() != 1) throw std::invalid_argument("fresh must be 1-D");
            std::vector<NamedArray> grads;
            double loss = 0.0;
            {
              py::gil_scoped_release release;
              loss = t.batch_gradients(users.data(), items.data(), users.size(), grads,
                                       fresh ? fresh->data() : nullptr, fresh ? fresh->size() : 0);
            }
            return py::make_tuple(loss, to_dict(grads));
          },
          py::arg("users").noconvert(), py::arg("items").noconvert(),
          py::arg("fresh").noconvert() = py::none(),
          "Loss and gradients of one batch, nothing updated; with `fresh`, only those items run "
          "the tuned layers (the others' inputs from the cache).")
      .def(
          "step_pairs",
          [](EncoderTuner& t, std::int64_t epoch, std::int64_t step) {
            std::vector<std::int32_t> users, items;
            t.step_pairs(epoch, step, users, items);
            return py::make_tuple(to_array(users), to_array(items));
          },
          py::arg("epoch"), py::arg("step"), "The (users, items) interactions of that step.")
      .def(
          "step_items",
          [](EncoderTuner& t, std::int64_t epoch, std::int64_t step) {
            return to_array(t.step_items(epoch, step));
          },
          py::arg("epoch"), py::arg("step"), "Items whose tuned layers run in that step.")
      .def("cached_inputs",
           [](const EncoderTuner& t) {
             CArray<float> out({t.items(), t.width()});
             t.cached_inputs(out.mutable_data());
             return out;
           })
      .def("item_inputs",
           [](const EncoderTuner& t) {
             CArray<float> out({t.items(), t.width()});
             float* ptr = out.mutable_data();
             without_gil([&](const StopCheck& stop) { t.item_inputs(ptr, stop); });
             return out;
           })
      .def("tuned_weights", [](const EncoderTuner& t) { return to_dict(t.tuned_weights()); });
}

}  // namespace semrec::bindings
