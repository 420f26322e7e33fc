// Non-owning views of the caller's arrays, shared by every kernel: dense row-major matrices,
// CSR structures (with or without values) and caller-allocated top-k results.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace semrec {

// A row-major, C-contiguous float32 matrix owned by the caller.
struct MatrixView {
  const float* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  const float* row(std::int64_t i) const { return data + i * cols; }
};

// The structure of a CSR matrix owned by the caller (values are not needed). Each row's indices
// must be sorted ascending; duplicates are allowed. A default-constructed view means "none".
struct CsrView {
  const std::int64_t* indptr = nullptr;
  const std::int32_t* indices = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  bool present() const { return indptr != nullptr; }
};

// Checks a CSR structure against the shape a kernel expects (rows x cols, every index inside
// [0, cols), indptr starting at 0 and non-decreasing, and, when asked, each row sorted), so that
// a direct call with malformed arrays raises instead of reading out of bounds.
inline void check_csr(const CsrView& m, std::int64_t rows, std::int64_t cols, const char* name,
                      bool require_sorted = true) {
  if (!m.present()) return;
  const auto text = [&](const std::string& what) { return std::string(name) + what; };
  if (m.rows != rows || m.cols != cols) {
    throw std::invalid_argument(text(" has shape (" + std::to_string(m.rows) + ", " +
                                     std::to_string(m.cols) + "), expected (" +
                                     std::to_string(rows) + ", " + std::to_string(cols) + ")"));
  }
  if (m.indptr[0] != 0) throw std::invalid_argument(text(": indptr[0] must be 0"));
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::int64_t a = m.indptr[i], b = m.indptr[i + 1];
    if (b < a) throw std::invalid_argument(text(": indptr must be non-decreasing"));
    for (std::int64_t p = a; p < b; ++p) {
      const std::int32_t j = m.indices[p];
      if (j < 0 || j >= cols) {
        throw std::out_of_range(text(": index " + std::to_string(j) + " out of range for " +
                                     std::to_string(cols) + " items"));
      }
      if (require_sorted && p > a && j < m.indices[p - 1]) {
        throw std::invalid_argument(text(": indices must be sorted within rows"));
      }
    }
  }
}

// A CSR matrix with float values owned by the caller; each row's indices sorted ascending.
struct CsrValuesView {
  const std::int64_t* indptr = nullptr;
  const std::int32_t* indices = nullptr;
  const float* values = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

// Caller-allocated top-k results, each rows x k, row-major: ids best first, padded with -1,
// and their scores, padded with -inf.
struct TopKOutput {
  std::int32_t* ids = nullptr;
  float* scores = nullptr;
};

}  // namespace semrec
