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

// Registers name(recs, k, <values_name>, num_threads) -> one float64 per user (row of recs),
// computed without the GIL by kernel(recs, k, view(values), num_threads, out, stop).
template <class T, class View, class Kernel>
void def_per_user(py::module_& m, const char* name, const char* values_name, View view,
                  Kernel kernel, const char* doc) {
  m.def(
      name,
      [view, kernel](const CArray<std::int32_t>& recs, int k, const CArray<T>& values,
                     ThreadCount num_threads) {
        const RecommendationView r = recs_view(recs);
        const auto v = view(values);
        CArray<double> out(r.rows);
        double* dst = out.mutable_data();
        without_gil([&](const StopCheck& stop) { kernel(r, k, v, num_threads, dst, stop); });
        return out;
      },
      py::arg("recs").noconvert(), py::arg("k"), py::arg(values_name).noconvert(),
      py::arg("num_threads"), doc);
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

  def_per_user<double>(
      m, "mean_item_value", "item_value",
      [](const CArray<double>& a) {
        return std::span<const double>(a.data(), static_cast<std::size_t>(a.size()));
      },
      mean_item_value, "Per-user mean of item_value over each list (novelty).");

  m.def(
      "intra_list_diversity",
      [](const CArray<std::int32_t>& recs, int k, const CArray<float>& embeddings,
         const CArray<double>& inverse_norms, ThreadCount num_threads) {
        const RecommendationView r = recs_view(recs);
        const MatrixView e = matrix_view(embeddings, "embeddings");
        const std::span<const double> inv(inverse_norms.data(),
                                          static_cast<std::size_t>(inverse_norms.size()));
        CArray<double> out(r.rows);
        double* dst = out.mutable_data();
        without_gil([&](const StopCheck& stop) {
          intra_list_diversity(r, k, e, inv, num_threads, dst, stop);
        });
        return out;
      },
      py::arg("recs").noconvert(), py::arg("k"), py::arg("embeddings").noconvert(),
      py::arg("inverse_norms").noconvert(), py::arg("num_threads"),
      "Per-user mean pairwise cosine distance within each list.");
}

}  // namespace semrec::bindings
