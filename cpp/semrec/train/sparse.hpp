// Products of a row-sparse matrix (CSR with values) with dense row-major matrices, on plain
// arrays. Parallel on LibTorch's intra-op threads; every output element is summed in a fixed
// order, so results are identical for any thread count.
#pragma once

#include <cstdint>
#include <vector>

namespace semrec::train {

class SparseRows {
 public:
  SparseRows() = default;
  SparseRows(std::vector<std::int64_t> indptr, std::vector<std::int32_t> indices,
             std::vector<float> values, std::int64_t cols);

  std::int64_t rows() const { return static_cast<std::int64_t>(indptr_.size()) - 1; }
  std::int64_t cols() const { return cols_; }
  std::int64_t row_size(std::int64_t r) const { return indptr_[r + 1] - indptr_[r]; }

  // out = M x: x is cols() x dim, out rows() x dim (no overlap).
  void multiply(const float* x, std::int64_t dim, float* out) const;

  // out[n] = row rows[n] of M x, for n < count (out: count x dim).
  void multiply_rows(const std::int32_t* rows, std::int64_t count, const float* x, std::int64_t dim,
                     float* out) const;

  // out += M[rows]^T y: y holds one row per listed row (count x dim), out is cols() x dim.
  // Parallel over slices of the dim columns; within a slice, entries are added in row order.
  void add_transposed_rows(const std::int32_t* rows, std::int64_t count, const float* y,
                           std::int64_t dim, float* out) const;

 private:
  std::vector<std::int64_t> indptr_{0};
  std::vector<std::int32_t> indices_;
  std::vector<float> values_;
  std::int64_t cols_ = 0;
};

}  // namespace semrec::train
