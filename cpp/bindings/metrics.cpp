#include "semrec/metrics.hpp"

#include <vector>

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

RecommendationView recs_view(const CArray<std::int32_t>& ids) {
  if (ids.ndim() != 2) throw std::invalid_argument("recommendations must be 2-D");
  return {ids.data(), ids.shape(0), ids.shape(1)};
}

}  // namespace

void register_metrics(py::module_& m) {
  m.def(
      "ranking_metrics",
      [](const CArray<std::int32_t>& recs, const CArray<std::int64_t>& rel_indptr,
         const CArray<std::int32_t>& rel_indices, std::int64_t n_items,
         const std::vector<int>& cutoffs, ThreadCount num_threads) {
        const RecommendationView r = recs_view(recs);
        const CsrView rel = csr_view(rel_indptr, rel_indices, n_items, "relevant");
        CArray<double> out({r.rows, static_cast<std::int64_t>(cutoffs.size()),
                            static_cast<std::int64_t>(n_ranking_metrics)});
        double* dst = out.mutable_data();
        without_gil([&](const StopCheck& stop) {
          ranking_metrics(r, rel, cutoffs, num_threads, dst, stop);
        });
        return out;
      },
      py::arg("recs").noconvert(), py::arg("rel_indptr").noconvert(),
      py::arg("rel_indices").noconvert(), py::arg("n_items"), py::arg("cutoffs"),
      py::arg("num_threads"),
      "Per-user precision, recall, ndcg, map, hit_rate, mrr at each cutoff; see "
      "semrec.metrics.");

  m.def(
      "distinct_items",
      [](const CArray<std::int32_t>& recs, int k, std::int64_t n_items) {
        const RecommendationView r = recs_view(recs);
        std::int64_t count = 0;
        without_gil([&](const StopCheck&) { count = distinct_items(r, k, n_items); });
        return count;
      },
      py::arg("recs").noconvert(), py::arg("k"), py::arg("n_items"),
      "Distinct real item ids among the first k columns.");

  m.def(
      "mean_item_value",
      [](const CArray<std::int32_t>& recs, int k, const CArray<double>& item_value,
         ThreadCount num_threads) {
        const RecommendationView r = recs_view(recs);
        const std::span<const double> values(item_value.data(),
                                             static_cast<std::size_t>(item_value.size()));
        CArray<double> out(r.rows);
        double* dst = out.mutable_data();
        without_gil(
            [&](const StopCheck& stop) { mean_item_value(r, k, values, num_threads, dst, stop); });
        return out;
      },
      py::arg("recs").noconvert(), py::arg("k"), py::arg("item_value").noconvert(),
      py::arg("num_threads"), "Per-user mean of item_value over each list (novelty).");

  m.def(
      "intra_list_diversity",
      [](const CArray<std::int32_t>& recs, int k, const CArray<float>& embeddings,
         ThreadCount num_threads) {
        const RecommendationView r = recs_view(recs);
        const MatrixView e = matrix_view(embeddings, "embeddings");
        CArray<double> out(r.rows);
        double* dst = out.mutable_data();
        without_gil(
            [&](const StopCheck& stop) { intra_list_diversity(r, k, e, num_threads, dst, stop); });
        return out;
      },
      py::arg("recs").noconvert(), py::arg("k"), py::arg("embeddings").noconvert(),
      py::arg("num_threads"), "Per-user mean pairwise cosine distance within each list.");

  m.def(
      "error_sums",
      [](const CArray<float>& predicted, const CArray<float>& actual) {
        const std::span<const float> p(predicted.data(),
                                       static_cast<std::size_t>(predicted.size()));
        const std::span<const float> a(actual.data(), static_cast<std::size_t>(actual.size()));
        double squared = 0.0, absolute = 0.0;
        without_gil([&](const StopCheck&) { error_sums(p, a, squared, absolute); });
        return py::make_tuple(squared, absolute);
      },
      py::arg("predicted").noconvert(), py::arg("actual").noconvert(),
      "Sum of squared and of absolute errors.");
}

}  // namespace semrec::bindings
