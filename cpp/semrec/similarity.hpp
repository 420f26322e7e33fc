// Exact top-k inner-product / cosine search over float32 row vectors.
#pragma once

#include <cstdint>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

enum class Metric { dot, cosine };

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
