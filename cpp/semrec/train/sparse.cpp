#include "semrec/train/sparse.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace semrec::train {

SparseRows::SparseRows(std::vector<std::int64_t> indptr, std::vector<std::int32_t> indices,
                       std::vector<float> values, std::int64_t cols)
    : indptr_(std::move(indptr)),
      indices_(std::move(indices)),
      values_(std::move(values)),
      cols_(cols) {
  if (indptr_.empty() || indptr_.front() != 0 ||
      indptr_.back() != static_cast<std::int64_t>(indices_.size()) ||
      indices_.size() != values_.size()) {
    throw std::invalid_argument("SparseRows: indptr, indices and values disagree");
  }
}

namespace {

// dst = Σ_k values[k] * x[indices[k]] over one row's entries, in entry order.
inline void row_product(const std::int32_t* idx, const float* val, std::int64_t n, const float* x,
                        std::int64_t dim, float* dst) {
  std::fill(dst, dst + dim, 0.0f);
  for (std::int64_t k = 0; k < n; ++k) {
    const float w = val[k];
    const float* src = x + static_cast<std::int64_t>(idx[k]) * dim;
    for (std::int64_t d = 0; d < dim; ++d) dst[d] += w * src[d];
  }
}

}  // namespace

void SparseRows::multiply(const float* x, std::int64_t dim, float* out) const {
  at::parallel_for(0, rows(), 64, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t k = indptr_[r];
      row_product(indices_.data() + k, values_.data() + k, indptr_[r + 1] - k, x, dim,
                  out + r * dim);
    }
  });
}

void SparseRows::multiply_rows(const std::int32_t* rows, std::int64_t count, const float* x,
                               std::int64_t dim, float* out) const {
  at::parallel_for(0, count, 64, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n) {
      const std::int64_t k = indptr_[rows[n]];
      row_product(indices_.data() + k, values_.data() + k, indptr_[rows[n] + 1] - k, x, dim,
                  out + n * dim);
    }
  });
}

void SparseRows::add_transposed_rows(const std::int32_t* rows, std::int64_t count, const float* y,
                                     std::int64_t dim, float* out) const {
  constexpr std::int64_t kSlice = 64;  // columns per task: one cache line of floats x 4
  const std::int64_t slices = (dim + kSlice - 1) / kSlice;
  at::parallel_for(0, slices, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t s = begin; s < end; ++s) {
      const std::int64_t lo = s * kSlice, hi = std::min(dim, lo + kSlice);
      for (std::int64_t n = 0; n < count; ++n) {
        const float* src = y + n * dim;
        for (std::int64_t k = indptr_[rows[n]]; k < indptr_[rows[n] + 1]; ++k) {
          const float w = values_[k];
          float* dst = out + static_cast<std::int64_t>(indices_[k]) * dim;
          for (std::int64_t d = lo; d < hi; ++d) dst[d] += w * src[d];
        }
      }
    }
  });
}

}  // namespace semrec::train
