#include "semrec/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace semrec {

namespace {

// Users per parallel task: enough work to amortise scheduling, small enough to balance.
constexpr std::int64_t kUsersPerTask = 512;

std::int64_t n_tasks(std::int64_t rows) { return (rows + kUsersPerTask - 1) / kUsersPerTask; }

bool is_relevant(const CsrView& relevant, std::int64_t user, std::int32_t item) {
  const std::int32_t* first = relevant.indices + relevant.indptr[user];
  const std::int32_t* last = relevant.indices + relevant.indptr[user + 1];
  return std::binary_search(first, last, item);
}

}  // namespace

void ranking_metrics(const RecommendationView& recs, const CsrView& relevant,
                     std::span<const int> cutoffs, int num_threads, double* out,
                     const StopCheck& stop) {
  if (relevant.rows != recs.rows) {
    throw std::invalid_argument("relevant must have one row per recommendation list");
  }
  int max_k = 0;
  for (int k : cutoffs) {
    if (k < 1 || k > recs.width) {
      throw std::invalid_argument("every cutoff must lie in [1, list width]");
    }
    max_k = std::max(max_k, k);
  }
  // 1 / log2(rank + 2) and its prefix sums (the ideal DCG for n relevant items).
  std::vector<double> discount(max_k), ideal(max_k + 1, 0.0);
  for (int r = 0; r < max_k; ++r) {
    discount[r] = 1.0 / std::log2(r + 2.0);
    ideal[r + 1] = ideal[r] + discount[r];
  }
  const auto n_cut = static_cast<std::int64_t>(cutoffs.size());
  parallel_tasks(n_tasks(recs.rows), num_threads, stop, [&](std::int64_t task) {
    std::vector<char> hit(max_k);
    const std::int64_t end = std::min(recs.rows, (task + 1) * kUsersPerTask);
    for (std::int64_t u = task * kUsersPerTask; u < end; ++u) {
      const std::int32_t* list = recs.ids + u * recs.width;
      for (int r = 0; r < max_k; ++r) hit[r] = list[r] >= 0 && is_relevant(relevant, u, list[r]);
      const std::int64_t n_rel = relevant.indptr[u + 1] - relevant.indptr[u];
      for (std::int64_t c = 0; c < n_cut; ++c) {
        double* row = out + (u * n_cut + c) * n_ranking_metrics;
        std::fill(row, row + n_ranking_metrics, 0.0);
        const int k = cutoffs[c];
        if (n_rel == 0) continue;
        double hits = 0.0, dcg = 0.0, ap = 0.0, rr = 0.0;
        for (int r = 0; r < k; ++r) {
          if (!hit[r]) continue;
          hits += 1.0;
          dcg += discount[r];
          ap += hits / (r + 1.0);
          if (rr == 0.0) rr = 1.0 / (r + 1.0);
        }
        const auto denom = static_cast<double>(std::min<std::int64_t>(n_rel, k));
        row[precision] = hits / k;
        row[recall] = hits / static_cast<double>(n_rel);
        row[ndcg] = dcg / ideal[static_cast<std::size_t>(denom)];
        row[map] = ap / denom;
        row[hit_rate] = hits > 0.0 ? 1.0 : 0.0;
        row[mrr] = rr;
      }
    }
  });
}

std::int64_t distinct_items(const RecommendationView& recs, int k, std::int64_t n_items) {
  if (k < 1 || k > recs.width) throw std::invalid_argument("k must lie in [1, list width]");
  std::vector<char> seen(n_items, 0);
  std::int64_t count = 0;
  for (std::int64_t u = 0; u < recs.rows; ++u) {
    const std::int32_t* list = recs.ids + u * recs.width;
    for (int r = 0; r < k; ++r) {
      const std::int32_t item = list[r];
      if (item < 0) continue;
      if (item >= n_items) throw std::out_of_range("recommended item id >= n_items");
      count += seen[item] == 0;
      seen[item] = 1;
    }
  }
  return count;
}

void mean_item_value(const RecommendationView& recs, int k, std::span<const double> item_value,
                     int num_threads, double* out, const StopCheck& stop) {
  if (k < 1 || k > recs.width) throw std::invalid_argument("k must lie in [1, list width]");
  const auto n_items = static_cast<std::int64_t>(item_value.size());
  parallel_tasks(n_tasks(recs.rows), num_threads, stop, [&](std::int64_t task) {
    const std::int64_t end = std::min(recs.rows, (task + 1) * kUsersPerTask);
    for (std::int64_t u = task * kUsersPerTask; u < end; ++u) {
      const std::int32_t* list = recs.ids + u * recs.width;
      double sum = 0.0;
      int n = 0;
      for (int r = 0; r < k; ++r) {
        if (list[r] < 0) continue;
        if (list[r] >= n_items) throw std::out_of_range("recommended item id >= n_items");
        sum += item_value[list[r]];
        ++n;
      }
      out[u] = n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
    }
  });
}

void intra_list_diversity(const RecommendationView& recs, int k, const MatrixView& embeddings,
                          std::span<const double> inverse_norms, int num_threads, double* out,
                          const StopCheck& stop) {
  if (k < 1 || k > recs.width) throw std::invalid_argument("k must lie in [1, list width]");
  if (static_cast<std::int64_t>(inverse_norms.size()) != embeddings.rows) {
    throw std::invalid_argument("inverse_norms must hold one value per embedding row");
  }
  parallel_tasks(n_tasks(recs.rows), num_threads, stop, [&](std::int64_t task) {
    std::vector<std::int32_t> items;
    const std::int64_t end = std::min(recs.rows, (task + 1) * kUsersPerTask);
    for (std::int64_t u = task * kUsersPerTask; u < end; ++u) {
      const std::int32_t* list = recs.ids + u * recs.width;
      items.clear();
      for (int r = 0; r < k; ++r) {
        if (list[r] < 0) continue;
        if (list[r] >= embeddings.rows) throw std::out_of_range("recommended item id >= n_items");
        items.push_back(list[r]);
      }
      const auto n = static_cast<std::int64_t>(items.size());
      if (n < 2) {
        out[u] = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      double total = 0.0;
      for (std::int64_t a = 0; a < n; ++a) {
        const float* x = embeddings.row(items[a]);
        for (std::int64_t b = a + 1; b < n; ++b) {
          const float* y = embeddings.row(items[b]);
          double dot = 0.0;
          for (std::int64_t d = 0; d < embeddings.cols; ++d) {
            dot += static_cast<double>(x[d]) * y[d];
          }
          const double cosine = dot * inverse_norms[items[a]] * inverse_norms[items[b]];
          total += std::clamp(1.0 - cosine, 0.0, 2.0);  // rounding never gives a distance < 0
        }
      }
      out[u] = total / (static_cast<double>(n) * (n - 1) / 2.0);
    }
  });
}

}  // namespace semrec
