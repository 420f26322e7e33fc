// Exact top-k inner-product / cosine search over float32 row vectors.
#pragma once

#include <cstdint>

#include "semrec/parallel.hpp"

namespace semrec {

enum class Metric { dot, cosine };

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

// Caller-allocated results, each rows x k, row-major.
struct TopKOutput {
  std::int32_t* ids = nullptr;
  float* scores = nullptr;
};

// For every query row, the k items with the highest score, best first, ties broken by the lower
// item id. Items listed in the query's row of `exclude` are skipped. Rows with fewer than k
// eligible items are padded with id -1 and score -inf. Each score is summed in one fixed order,
// so it is bitwise the same for any thread count, batch size or position of the item: identical
// items tie exactly. For metric=cosine a zero vector scores 0 against everything.
void topk(MatrixView queries, MatrixView items, int k, Metric metric, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop = {});

// As topk, but query i only considers the items listed in row i of `candidates` (sorted).
void topk_candidates(MatrixView queries, MatrixView items, CsrView candidates, int k, Metric metric,
                     CsrView exclude, int num_threads, TopKOutput out, const StopCheck& stop = {});

}  // namespace semrec
