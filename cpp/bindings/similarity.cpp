#include "semrec/similarity.hpp"

#include <optional>
#include <string>

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

Metric parse_metric(const std::string& name) {
  if (name == "dot") return Metric::dot;
  if (name == "cosine") return Metric::cosine;
  throw std::invalid_argument("metric must be 'cosine' or 'dot', got '" + name + "'");
}

py::tuple allocate(std::int64_t rows, int k, TopKOutput& out) {
  if (k < 1) throw std::invalid_argument("k must be >= 1");
  CArray<std::int32_t> ids({rows, static_cast<std::int64_t>(k)});
  CArray<float> scores({rows, static_cast<std::int64_t>(k)});
  out = {ids.mutable_data(), scores.mutable_data()};
  return py::make_tuple(ids, scores);
}

}  // namespace

void register_similarity(py::module_& m) {
  m.def(
      "topk",
      [](const CArray<float>& queries, const CArray<float>& items, int k, const std::string& metric,
         std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, int num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(items, "items");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        const Metric met = parse_metric(metric);
        TopKOutput out;
        py::tuple result = allocate(q.rows, k, out);
        without_gil([&](const StopCheck& stop) { topk(q, x, k, met, ex, num_threads, out, stop); });
        return result;
      },
      py::arg("queries").noconvert(), py::arg("items").noconvert(), py::arg("k"), py::arg("metric"),
      py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("num_threads"),
      "Exact blocked top-k; see semrec.similarity.topk for the documented API.");

  m.def(
      "topk_candidates",
      [](const CArray<float>& queries, const CArray<float>& items,
         const CArray<std::int64_t>& cand_indptr, const CArray<std::int32_t>& cand_indices, int k,
         const std::string& metric, std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, int num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(items, "items");
        const CsrView cand = csr_view(cand_indptr, cand_indices, x.rows, "candidates");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        const Metric met = parse_metric(metric);
        TopKOutput out;
        py::tuple result = allocate(q.rows, k, out);
        without_gil([&](const StopCheck& stop) {
          topk_candidates(q, x, cand, k, met, ex, num_threads, out, stop);
        });
        return result;
      },
      py::arg("queries").noconvert(), py::arg("items").noconvert(),
      py::arg("cand_indptr").noconvert(), py::arg("cand_indices").noconvert(), py::arg("k"),
      py::arg("metric"), py::arg("exclude_indptr").noconvert(),
      py::arg("exclude_indices").noconvert(), py::arg("num_threads"),
      "Top-k over per-query candidate lists; see semrec.similarity.topk.");
}

}  // namespace semrec::bindings
