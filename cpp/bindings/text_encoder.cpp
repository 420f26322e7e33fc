// Tokenizer, safetensors header and BERT encoder bindings for semrec._text. Validation with
// user-facing messages lives in python/semrec/text/; the GIL is released around the heavy work.
#include "bindings/common.hpp"
#include "bindings/register.hpp"
#include "semrec/text/bert.hpp"
#include "semrec/text/safetensors.hpp"
#include "semrec/text/tokenizer.hpp"

namespace semrec::bindings {

using text::BertConfig;
using text::BertEncoder;
using text::TensorEntry;
using text::WordPieceTokenizer;

namespace {

std::vector<std::string> to_strings(const py::list& texts) {
  std::vector<std::string> out;
  out.reserve(texts.size());
  for (const auto& t : texts) out.push_back(t.cast<std::string>());
  return out;
}

}  // namespace

void register_text_encoder(py::module_& m) {
  py::register_exception<text::SafetensorsError>(m, "SafetensorsError", PyExc_ValueError);

  py::class_<WordPieceTokenizer>(m, "WordPieceTokenizer")
      .def(py::init<std::vector<std::string>, int, bool>(), py::arg("vocab"),
           py::arg("max_chars_per_word") = 100, py::arg("lowercase") = true)
      .def(
          "encode_batch",
          [](const WordPieceTokenizer& tok, const py::list& texts, std::int64_t max_length) {
            const auto strings = to_strings(texts);
            std::vector<std::vector<std::int32_t>> out(strings.size());
            {
              py::gil_scoped_release release;
              for (std::size_t i = 0; i < strings.size(); ++i) {
                out[i] = tok.encode(strings[i], max_length);
              }
            }
            return out;
          },
          py::arg("texts"), py::arg("max_length"))
      .def_property_readonly("vocab_size", &WordPieceTokenizer::vocab_size)
      .def_property_readonly("pad_id", &WordPieceTokenizer::pad_id);

  m.def(
      "read_safetensors_header",
      [](const std::string& path) {
        auto h = text::read_safetensors_header(path);
        return py::make_tuple(py::bytes(h.json), h.data_start, h.data_size);
      },
      py::arg("path"));

  py::class_<TensorEntry>(m, "TensorEntry")
      .def(py::init([](std::string name, std::string dtype, std::vector<std::int64_t> shape,
                       std::uint64_t begin, std::uint64_t end) {
             return TensorEntry{std::move(name), std::move(dtype), std::move(shape), begin, end};
           }),
           py::arg("name"), py::arg("dtype"), py::arg("shape"), py::arg("begin"), py::arg("end"));

  py::class_<BertConfig>(m, "BertConfig")
      .def(py::init<>())
      .def_readwrite("vocab_size", &BertConfig::vocab_size)
      .def_readwrite("hidden", &BertConfig::hidden)
      .def_readwrite("layers", &BertConfig::layers)
      .def_readwrite("heads", &BertConfig::heads)
      .def_readwrite("intermediate", &BertConfig::intermediate)
      .def_readwrite("max_positions", &BertConfig::max_positions)
      .def_readwrite("type_vocab_size", &BertConfig::type_vocab_size)
      .def_readwrite("layer_norm_eps", &BertConfig::layer_norm_eps)
      .def_readwrite("mean_pooling", &BertConfig::mean_pooling)
      .def_readwrite("precision", &BertConfig::precision)
      .def_readwrite("onednn", &BertConfig::onednn)
      .def_readwrite("reduce_range", &BertConfig::reduce_range);

  m.def("int8_kernel_isa", &text::int8_kernel_isa);

  py::class_<BertEncoder>(m, "BertEncoder")
      .def(py::init([](const BertConfig& cfg, const std::string& path, std::uint64_t data_start,
                       const std::vector<TensorEntry>& entries, const std::string& prefix) {
             py::gil_scoped_release release;
             return std::make_unique<BertEncoder>(cfg, path, data_start, entries, prefix);
           }),
           py::arg("config"), py::arg("path"), py::arg("data_start"), py::arg("entries"),
           py::arg("prefix"))
      .def_property_readonly("dim", &BertEncoder::dim)
      .def_property_readonly("kernels", &BertEncoder::kernels)
      .def(
          "encode",
          [](const BertEncoder& enc, const std::vector<std::vector<std::int32_t>>& ids,
             std::int64_t batch_size, bool normalize) {
            CArray<float> out({static_cast<std::int64_t>(ids.size()), enc.dim()});
            float* ptr = out.mutable_data();
            without_gil(
                [&](const StopCheck& stop) { enc.encode(ids, batch_size, normalize, ptr, stop); });
            return out;
          },
          py::arg("ids"), py::arg("batch_size"), py::arg("normalize"))
      .def(
          "encode_texts",
          [](const BertEncoder& enc, const WordPieceTokenizer& tok, const py::list& texts,
             std::int64_t max_length, std::int64_t batch_size, bool normalize) {
            const auto strings = to_strings(texts);
            CArray<float> out({static_cast<std::int64_t>(strings.size()), enc.dim()});
            float* ptr = out.mutable_data();
            without_gil([&](const StopCheck& stop) {
              std::vector<std::vector<std::int32_t>> ids(strings.size());
              for (std::size_t i = 0; i < strings.size(); ++i) {
                ids[i] = tok.encode(strings[i], max_length);
              }
              enc.encode(ids, batch_size, normalize, ptr, stop);
            });
            return out;
          },
          py::arg("tokenizer"), py::arg("texts"), py::arg("max_length"), py::arg("batch_size"),
          py::arg("normalize"));
}

}  // namespace semrec::bindings
