#include "semrec/knn.hpp"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

const float* vector_of(const CArray<float>& a, std::int64_t n, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != n) {
    throw std::invalid_argument(std::string(name) + " must be 1-D of length " + std::to_string(n));
  }
  return a.data();
}

// A NumPy array that takes over the vector's buffer (no copy on the way out).
template <class T>
py::array_t<T> adopt(std::vector<T>&& v) {
  auto owner = std::make_unique<std::vector<T>>(std::move(v));
  const auto size = static_cast<py::ssize_t>(owner->size());
  T* data = owner->data();
  py::capsule free_when_done(owner.get(), [](void* p) { delete static_cast<std::vector<T>*>(p); });
  owner.release();
  return py::array_t<T>({size}, {static_cast<py::ssize_t>(sizeof(T))}, data, free_when_done);
}

}  // namespace

void register_knn(py::module_& m) {
  m.def(
      "knn_graph",
      [](const CArray<std::int64_t>& q_indptr, const CArray<std::int32_t>& q_indices,
         const CArray<float>& q_values, const CArray<std::int64_t>& t_indptr,
         const CArray<std::int32_t>& t_indices, const CArray<float>& t_values,
         std::int64_t n_targets, const CArray<float>& query_norms,
         const CArray<float>& target_norms, std::optional<CArray<std::int32_t>> self,
         std::optional<CArray<std::int32_t>> target_ids, int k, float shrink,
         ThreadCount num_threads, std::optional<py::function> progress) {
        const std::int64_t dims = t_indptr.ndim() == 1 ? t_indptr.shape(0) - 1 : 0;
        const CsrValuesView q = csr_values_view(q_indptr, q_indices, q_values, dims, "queries");
        const CsrValuesView t =
            csr_values_view(t_indptr, t_indices, t_values, n_targets, "targets_t");
        const float* qn = vector_of(query_norms, q.rows, "query_norms");
        const float* tn = vector_of(target_norms, n_targets, "target_norms");
        const std::int32_t* me = nullptr;
        if (self) {
          if (self->ndim() != 1 || self->shape(0) != q.rows) {
            throw std::invalid_argument("self must have one id per query row");
          }
          me = self->data();
        }
        const std::int32_t* names = nullptr;
        if (target_ids) {
          if (target_ids->ndim() != 1 || target_ids->shape(0) != n_targets) {
            throw std::invalid_argument("target_ids must have one id per target");
          }
          names = target_ids->data();
        }
        const Progress report = throttled(progress);  // progress(rows_done)
        CsrResult graph;
        without_gil([&](const StopCheck& stop) {
          graph = neighbour_graph(q, t, qn, tn, me, names, {k, shrink}, num_threads, stop, report);
        });
        if (progress) (*progress)(q.rows);
        return py::make_tuple(adopt(std::move(graph.indptr)), adopt(std::move(graph.indices)),
                              adopt(std::move(graph.values)));
      },
      py::arg("q_indptr").noconvert(), py::arg("q_indices").noconvert(),
      py::arg("q_values").noconvert(), py::arg("t_indptr").noconvert(),
      py::arg("t_indices").noconvert(), py::arg("t_values").noconvert(), py::arg("n_targets"),
      py::arg("query_norms").noconvert(), py::arg("target_norms").noconvert(),
      py::arg("self").noconvert(), py::arg("target_ids").noconvert(), py::arg("k"),
      py::arg("shrink"), py::arg("num_threads"), py::arg("progress") = py::none(),
      "Top-k cosine neighbour graph (indptr, indices, values); see semrec.ItemKNN.");

  m.def(
      "knn_topk",
      [](const CArray<std::int64_t>& h_indptr, const CArray<std::int32_t>& h_indices,
         const CArray<float>& h_values, const CArray<std::int64_t>& g_indptr,
         const CArray<std::int32_t>& g_indices, const CArray<float>& g_values, std::int64_t n_items,
         int k, std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices,
         std::optional<CArray<std::int32_t>> candidates, ThreadCount num_threads) {
        const std::int64_t dims = g_indptr.ndim() == 1 ? g_indptr.shape(0) - 1 : 0;
        const CsrValuesView h = csr_values_view(h_indptr, h_indices, h_values, dims, "history");
        const CsrValuesView g = csr_values_view(g_indptr, g_indices, g_values, n_items, "graph");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, n_items, "exclude");
        if (k < 1) throw std::invalid_argument("k must be >= 1");
        const std::int32_t* cand = nullptr;
        std::int64_t n_cand = 0;
        if (candidates) {
          if (candidates->ndim() != 1) throw std::invalid_argument("candidates must be 1-D");
          cand = candidates->data();
          n_cand = candidates->shape(0);
        }
        CArray<std::int32_t> ids({h.rows, static_cast<std::int64_t>(k)});
        CArray<float> scores({h.rows, static_cast<std::int64_t>(k)});
        TopKOutput out{ids.mutable_data(), scores.mutable_data()};
        without_gil([&](const StopCheck& stop) {
          neighbour_topk(h, g, k, ex, cand, n_cand, num_threads, out, stop);
        });
        return py::make_tuple(ids, scores);
      },
      py::arg("h_indptr").noconvert(), py::arg("h_indices").noconvert(),
      py::arg("h_values").noconvert(), py::arg("g_indptr").noconvert(),
      py::arg("g_indices").noconvert(), py::arg("g_values").noconvert(), py::arg("n_items"),
      py::arg("k"), py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("candidates").noconvert(), py::arg("num_threads"),
      "Top-k of history @ graph per row; see semrec.ItemKNN.recommend.");

  m.def(
      "knn_scores",
      [](const CArray<std::int64_t>& h_indptr, const CArray<std::int32_t>& h_indices,
         const CArray<float>& h_values, const CArray<std::int64_t>& g_indptr,
         const CArray<std::int32_t>& g_indices, const CArray<float>& g_values, std::int64_t n_items,
         ThreadCount num_threads) {
        const std::int64_t dims = g_indptr.ndim() == 1 ? g_indptr.shape(0) - 1 : 0;
        const CsrValuesView h = csr_values_view(h_indptr, h_indices, h_values, dims, "history");
        const CsrValuesView g = csr_values_view(g_indptr, g_indices, g_values, n_items, "graph");
        CArray<float> scores({h.rows, n_items});
        float* out = scores.mutable_data();
        without_gil([&](const StopCheck& stop) { neighbour_scores(h, g, num_threads, out, stop); });
        return scores;
      },
      py::arg("h_indptr").noconvert(), py::arg("h_indices").noconvert(),
      py::arg("h_values").noconvert(), py::arg("g_indptr").noconvert(),
      py::arg("g_indices").noconvert(), py::arg("g_values").noconvert(), py::arg("n_items"),
      py::arg("num_threads"),
      "Dense history @ graph, summed as knn_topk sums; see semrec.ItemKNN.score.");
}

}  // namespace semrec::bindings
