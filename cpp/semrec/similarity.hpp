// Exact top-k inner-product / cosine search over float32 row vectors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

enum class Metric { dot, cosine };

// How prepared items hold their vectors for the scan. float16 streams half the bytes, int8 a
// quarter (one scale per item); the candidates of every query are then re-scored exactly from
// the float32 rows, and the answer is certified by an error bound (or recomputed exactly), so
// results equal the float32 ones.
enum class ItemStorage { float32, float16, int8 };

// Item vectors prepared once for many searches: scaled for cosine, packed into the scan's panel
// layout, with their norms. The caller keeps the float32 rows (every search takes them) and
// guarantees they are finite. Searches may run concurrently with each other; append() waits
// for running searches and blocks new ones while it runs.
class PreparedItems {
 public:
  PreparedItems(std::int64_t dim, Metric metric, ItemStorage storage);
  ~PreparedItems();
  PreparedItems(const PreparedItems&) = delete;
  PreparedItems& operator=(const PreparedItems&) = delete;

  // Prepares rows as items size() .. size() + rows.rows - 1.
  void append(MatrixView rows, int num_threads, const StopCheck& stop = {});
  // The items appended so far, without waiting for an append in progress (a caller may hold a
  // lock of its own, such as Python's, that the append's stop check needs).
  std::int64_t size() const { return size_.load(std::memory_order_acquire); }
  std::int64_t bytes() const;  // memory held (panels, norms); waits for an append in progress
  std::int64_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  ItemStorage storage() const { return storage_; }

  struct Data;  // defined with the kernels
  const Data& data() const { return *data_; }
  std::shared_mutex& mutex() const { return mutex_; }

 private:
  std::int64_t dim_;
  Metric metric_;
  ItemStorage storage_;
  mutable std::shared_mutex mutex_;
  std::unique_ptr<Data> data_;
  std::atomic<std::int64_t> size_{0};  // data_->n, published when an append completes
};

// A hint that one query against `items` follows soon: wakes the helper threads its scan will
// use, if any, so that they are awake when it starts (run_eager_tasks). Results never depend
// on it; a hint not followed by a query costs a helper a short wait.
void expect_query(const PreparedItems& items, int num_threads);

// For every query row, the k items with the highest score, best first, ties broken by the lower
// item id. Items listed in the query's row of `exclude` are skipped. Rows with fewer than k
// eligible items are padded with id -1 and score -inf. Each score is summed in one fixed order,
// so it is bitwise the same for any thread count, batch size, path (batch, few queries,
// candidates, prepared items) or position of the item: identical items tie exactly. For
// metric=cosine a zero vector scores 0 against everything; vectors are scaled by powers of two
// first, so no norm or product overflows or underflows (exact scaling: the same bits otherwise).
void topk(MatrixView queries, MatrixView items, int k, Metric metric, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop = {});

// The same search over prepared items whose float32 rows are `rows` (the first rows.rows items
// are searched: a snapshot taken before a concurrent append stays consistent).
void topk(MatrixView queries, const PreparedItems& items, MatrixView rows, int k, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop = {});

// out[i * items.rows + j] = dot(query i, item j) for every query and item (row-major), each
// summed in topk's fixed order: bitwise the scores topk returns for metric=dot, so a model's
// score() agrees with its recommend() to the last bit, ties included.
void dot_products(MatrixView queries, MatrixView items, int num_threads, float* out,
                  const StopCheck& stop = {});

// As topk, but query i only considers the items listed in row i of `candidates` (sorted).
void topk_candidates(MatrixView queries, MatrixView items, CsrView candidates, int k, Metric metric,
                     CsrView exclude, int num_threads, TopKOutput out, const StopCheck& stop = {});
void topk_candidates(MatrixView queries, const PreparedItems& items, MatrixView rows,
                     CsrView candidates, int k, CsrView exclude, int num_threads, TopKOutput out,
                     const StopCheck& stop = {});

// Per-query candidate lists given as a padded matrix (row i: query i's ids, -1 for none, any
// order, repeats allowed), e.g. what an approximate index proposes, as the sorted CSR that
// topk_candidates takes. Throws std::out_of_range for an id outside [-1, n_items).
struct PaddedLists {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::int64_t n_items = 0;
  CsrView view() const {
    return {indptr.data(), indices.data(), static_cast<std::int64_t>(indptr.size()) - 1, n_items};
  }
};
PaddedLists padded_lists(const std::int32_t* ids, std::int64_t rows, std::int64_t width,
                         std::int64_t n_items);

// Names of the compiled kernel's shape, for benchmark headers: e.g. "avx512 fma: 12 queries x
// 32 items per register tile".
const char* kernel_description();

}  // namespace semrec
