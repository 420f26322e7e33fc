#include "semrec/similarity.hpp"

#include <optional>
#include <string>

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

Metric parse_metric(const std::string& name) {
  return parse_choice<Metric>("metric", name, {{"cosine", Metric::cosine}, {"dot", Metric::dot}});
}

ItemStorage parse_storage(const std::string& name) {
  return parse_choice<ItemStorage>("storage", name,
                                   {{"float32", ItemStorage::float32},
                                    {"float16", ItemStorage::float16},
                                    {"int8", ItemStorage::int8}});
}

}  // namespace

void register_similarity(py::module_& m) {
  m.def(
      "topk",
      [](const CArray<float>& queries, const CArray<float>& items, int k, const std::string& metric,
         std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, ThreadCount num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(items, "items");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        const Metric met = parse_metric(metric);
        TopKOutput out;
        py::tuple result = topk_result(q.rows, k, out);
        without_gil([&](const StopCheck& stop) { topk(q, x, k, met, ex, num_threads, out, stop); });
        return result;
      },
      py::arg("queries").noconvert(), py::arg("items").noconvert(), py::arg("k"), py::arg("metric"),
      py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("num_threads"),
      "Exact blocked top-k; see semrec.similarity.topk for the documented API.");

  m.def(
      "dot_products",
      [](const CArray<float>& queries, const CArray<float>& items, ThreadCount num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(items, "items");
        CArray<float> out({q.rows, x.rows});
        float* o = out.mutable_data();
        without_gil([&](const StopCheck& stop) { dot_products(q, x, num_threads, o, stop); });
        return out;
      },
      py::arg("queries").noconvert(), py::arg("items").noconvert(), py::arg("num_threads"),
      "Every query's dot product with every item, summed as topk sums them.");

  m.def(
      "topk_candidates",
      [](const CArray<float>& queries, const CArray<float>& items,
         const CArray<std::int64_t>& cand_indptr, const CArray<std::int32_t>& cand_indices, int k,
         const std::string& metric, std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, ThreadCount num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(items, "items");
        const CsrView cand = csr_view(cand_indptr, cand_indices, x.rows, "candidates");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        const Metric met = parse_metric(metric);
        TopKOutput out;
        py::tuple result = topk_result(q.rows, k, out);
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

  py::class_<PreparedItems>(m, "PreparedItems",
                            "Item vectors packed for repeated search; see semrec.ItemIndex.")
      .def(py::init([](std::int64_t dim, const std::string& metric, const std::string& storage) {
             return std::make_unique<PreparedItems>(dim, parse_metric(metric),
                                                    parse_storage(storage));
           }),
           py::arg("dim"), py::arg("metric"), py::arg("storage"))
      .def(
          "append",
          [](PreparedItems& self, const CArray<float>& rows, ThreadCount num_threads) {
            const MatrixView x = matrix_view(rows, "rows");
            without_gil([&](const StopCheck& stop) { self.append(x, num_threads, stop); });
          },
          py::arg("rows").noconvert(), py::arg("num_threads"),
          "Packs rows (finite, checked by the caller) as the next items.")
      .def_property_readonly("size", &PreparedItems::size)
      // bytes() takes the items' lock, which an append holds while its stop check takes the
      // GIL: waiting for the lock with the GIL held would deadlock the two threads.
      .def_property_readonly("nbytes", [](const PreparedItems& self) {
        py::gil_scoped_release release;
        return self.bytes();
      });

  m.def(
      "expect_query",
      [](const PreparedItems& items, ThreadCount num_threads) { expect_query(items, num_threads); },
      py::arg("items"), py::arg("num_threads"),
      "Wakes the helper threads a single query against items will use.");
  m.def(
      "topk_prepared",
      [](const CArray<float>& queries, const PreparedItems& items, const CArray<float>& rows, int k,
         std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, ThreadCount num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(rows, "rows");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        TopKOutput out;
        py::tuple result = topk_result(q.rows, k, out);
        without_gil(
            [&](const StopCheck& stop) { topk(q, items, x, k, ex, num_threads, out, stop); });
        return result;
      },
      py::arg("queries").noconvert(), py::arg("items"), py::arg("rows").noconvert(), py::arg("k"),
      py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("num_threads"), "Top-k over prepared items; see semrec.similarity.topk.");

  m.def(
      "topk_candidates_prepared",
      [](const CArray<float>& queries, const PreparedItems& items, const CArray<float>& rows,
         const CArray<std::int64_t>& cand_indptr, const CArray<std::int32_t>& cand_indices, int k,
         std::optional<CArray<std::int64_t>> exclude_indptr,
         std::optional<CArray<std::int32_t>> exclude_indices, ThreadCount num_threads) {
        const MatrixView q = matrix_view(queries, "queries");
        const MatrixView x = matrix_view(rows, "rows");
        const CsrView cand = csr_view(cand_indptr, cand_indices, x.rows, "candidates");
        const CsrView ex = csr_view(exclude_indptr, exclude_indices, x.rows, "exclude");
        TopKOutput out;
        py::tuple result = topk_result(q.rows, k, out);
        without_gil([&](const StopCheck& stop) {
          topk_candidates(q, items, x, cand, k, ex, num_threads, out, stop);
        });
        return result;
      },
      py::arg("queries").noconvert(), py::arg("items"), py::arg("rows").noconvert(),
      py::arg("cand_indptr").noconvert(), py::arg("cand_indices").noconvert(), py::arg("k"),
      py::arg("exclude_indptr").noconvert(), py::arg("exclude_indices").noconvert(),
      py::arg("num_threads"), "Top-k over per-query candidates of prepared items.");

  m.def(
      "padded_lists",
      [](const CArray<std::int32_t>& ids, std::int64_t n_items) {
        if (ids.ndim() != 2) throw std::invalid_argument("ids must be 2-D (queries x slots)");
        PaddedLists lists = padded_lists(ids.data(), ids.shape(0), ids.shape(1), n_items);
        CArray<std::int64_t> indptr(static_cast<py::ssize_t>(lists.indptr.size()));
        CArray<std::int32_t> indices(static_cast<py::ssize_t>(lists.indices.size()));
        std::copy(lists.indptr.begin(), lists.indptr.end(), indptr.mutable_data());
        std::copy(lists.indices.begin(), lists.indices.end(), indices.mutable_data());
        return py::make_tuple(indptr, indices);
      },
      py::arg("ids").noconvert(), py::arg("n_items"),
      "Per-query id lists padded with -1 as a sorted CSR structure (indptr, indices).");

  m.def(
      "kernel_description", [] { return std::string(kernel_description()); },
      "The compiled search kernel: instruction set and register tile.");
}

}  // namespace semrec::bindings
