// Non-owning views of the caller's arrays, shared by every kernel: dense row-major matrices,
// CSR structures (with or without values) and caller-allocated top-k results.
#pragma once

#include <cstdint>

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
