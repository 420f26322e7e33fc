// Hybrid's blend of its members' score rows: each row normalised over its finite entries and
// added with a weight into a float64 total, and the top-k of dense score rows.
#pragma once

#include <cstdint>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

enum class RowNormalization { zscore, minmax };

// For every row r of a rows x cols block (row-major, float32 or float64):
//   total[r] += weight * normalise(scores[r])
// where normalise works over the row's finite entries: zscore is (x - mean) / std (population
// std), minmax is (x - min) / (max - min). -inf entries (excluded items) stay -inf; a row without
// finite entries or without spread gives 0 at every finite entry. Each term is rounded as
// `weight * value` and then added, so a blend built by separate calls with weight 1 and a
// NumPy `total += weight * normed` is the same bit for bit. Rows are independent: the result is
// the same for any thread count. Returns false when some entry is NaN or +inf (total is then
// partly updated).
template <class T>
bool add_normalized_rows(const T* scores, std::int64_t rows, std::int64_t cols,
                         RowNormalization how, double weight, double* total, int num_threads,
                         const StopCheck& stop = {});

// The k best entries of each dense row (float32 or float64), best first, ties by the lower id:
// only entries above -inf, not in row r of `exclude` (may be absent; indices in any order) and,
// when `allowed` is not null, with allowed[j]. Padded with (-1, -inf); scores written as float32.
template <class T>
void topk_dense_rows(const T* scores, std::int64_t rows, std::int64_t cols, const CsrView& exclude,
                     const bool* allowed, int k, int num_threads, TopKOutput out,
                     const StopCheck& stop = {});

}  // namespace semrec
