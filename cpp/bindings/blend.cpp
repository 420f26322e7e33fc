#include "semrec/blend.hpp"

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

RowNormalization parse_normalization(const std::string& how) {
  return parse_choice<RowNormalization>(
      "normalize", how,
      {{"zscore", RowNormalization::zscore}, {"minmax", RowNormalization::minmax}});
}

template <class T>
void require_2d(const CArray<T>& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D");
}

template <class T>
void define_for(py::module_& m) {
  m.def(
      "add_normalized_rows",
      [](const CArray<T>& scores, const std::string& how, double weight, CArray<double>& total,
         ThreadCount num_threads) {
        require_2d(scores, "scores");
        require_2d(total, "total");
        if (total.shape(0) != scores.shape(0) || total.shape(1) != scores.shape(1)) {
          throw std::invalid_argument("total must have the shape of scores");
        }
        const RowNormalization mode = parse_normalization(how);
        double* out = total.mutable_data();
        bool valid = true;
        without_gil([&](const StopCheck& stop) {
          valid = add_normalized_rows(scores.data(), scores.shape(0), scores.shape(1), mode, weight,
                                      out, num_threads, stop);
        });
        return valid;
      },
      py::arg("scores").noconvert(), py::arg("how"), py::arg("weight"),
      py::arg("total").noconvert(), py::arg("num_threads"),
      "total += weight * each row of scores normalised over its finite entries; False when an "
      "entry is NaN or +inf. See semrec.hybrid.normalize_rows.");
  m.def(
      "topk_dense_rows",
      [](const CArray<T>& scores, int k, const std::optional<CArray<std::int64_t>>& exclude_indptr,
         const std::optional<CArray<std::int32_t>>& exclude_indices,
         const std::optional<CArray<bool>>& allowed, ThreadCount num_threads) {
        require_2d(scores, "scores");
        const std::int64_t rows = scores.shape(0), cols = scores.shape(1);
        const CsrView exclude = csr_view(exclude_indptr, exclude_indices, cols, "exclude");
        if (allowed && (allowed->ndim() != 1 || allowed->shape(0) != cols)) {
          throw std::invalid_argument("allowed must be 1-D with one entry per column");
        }
        TopKOutput out;
        py::tuple result = topk_result(rows, k, out);
        const bool* mask = allowed ? allowed->data() : nullptr;
        without_gil([&](const StopCheck& stop) {
          topk_dense_rows(scores.data(), rows, cols, exclude, mask, k, num_threads, out, stop);
        });
        return result;
      },
      py::arg("scores").noconvert(), py::arg("k"), py::arg("exclude_indptr").noconvert(),
      py::arg("exclude_indices").noconvert(), py::arg("allowed").noconvert(),
      py::arg("num_threads"),
      "The k best entries of each dense row (ties by the lower id), without the excluded and "
      "the not-allowed ones; returns (ids, scores).");
}

}  // namespace

void register_blend(py::module_& m) {
  define_for<float>(m);
  define_for<double>(m);
}

}  // namespace semrec::bindings
