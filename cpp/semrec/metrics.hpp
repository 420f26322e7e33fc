// Ranking and rating metrics over many users at once (definitions: python/semrec/metrics.py).
#pragma once

#include <cstdint>
#include <span>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

// Order of the ranking metrics in RankingOutput, per user and per cutoff.
enum RankingMetric : int { precision = 0, recall, ndcg, map, hit_rate, mrr, n_ranking_metrics };

// Recommendation lists: rows x width item ids, best first; -1 marks padding (never a hit).
struct RecommendationView {
  const std::int32_t* ids = nullptr;
  std::int64_t rows = 0;
  std::int64_t width = 0;
};

// out[(user * cutoffs.size() + c) * n_ranking_metrics + metric], binary relevance given by
// the sorted rows of `relevant` (row u belongs to list u). A user with no relevant item gets 0.
void ranking_metrics(const RecommendationView& recs, const CsrView& relevant,
                     std::span<const int> cutoffs, int num_threads, double* out,
                     const StopCheck& stop);

// Number of distinct real ids among the first k columns (catalog coverage numerator).
std::int64_t distinct_items(const RecommendationView& recs, int k, std::int64_t n_items);

// Per user: mean of item_value over the real ids among the first k columns (NaN if none).
// With item_value = -log2(popularity share) this is novelty.
void mean_item_value(const RecommendationView& recs, int k, std::span<const double> item_value,
                     int num_threads, double* out, const StopCheck& stop);

// Per user: mean pairwise cosine distance 1 - dot(a, b) * inverse_norms[a] * inverse_norms[b]
// over the real ids among the first k columns, in double (the float32 rows are exact in it),
// clamped to [0, 2]; a row with inverse norm 0 (a zero vector) is at distance 1 from every
// row. NaN for fewer than 2 items.
void intra_list_diversity(const RecommendationView& recs, int k, const MatrixView& embeddings,
                          std::span<const double> inverse_norms, int num_threads, double* out,
                          const StopCheck& stop);

}  // namespace semrec
