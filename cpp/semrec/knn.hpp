// Sparse neighbourhood collaborative filtering: top-K cosine neighbour graphs between the rows
// of a sparse matrix (items or users), and scoring of users through such a graph.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

// A CSR matrix built by a kernel: rows x cols, each row's indices ascending.
struct CsrResult {
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<float> values;
};

// Told, on the calling thread between tasks, how many query rows are finished (for a progress
// bar); the caller decides how often it is worth acting on.
using Progress = std::function<void(std::int64_t rows_done)>;

struct NeighbourSettings {
  int k = 100;          // neighbours kept per row
  float shrink = 0.0f;  // similarity = dot / (|a| |b| + shrink)
};

// For every row r of `queries` (q x d), its k most similar rows of a target matrix T (t x d),
// given as its transpose `targets_t` (d x t): similarity = dot(q_r, T_t) / (|q_r| |T_t| +
// shrink), norms passed in. Only targets with similarity > 0 are kept, never t == self[r]
// (self may be null: nothing excluded); ties go to the lower target id. Each dot product is
// summed in one fixed order (over the query's columns, ascending), so the graph is identical for
// any thread count. Returns a q x t CSR matrix of float similarities.
// `target_ids` (may be null: the identity) names target column t in the output and in the
// tie-break: a caller may renumber the targets (popular ones first keeps the accumulator's hot
// part in L1) and still get the graph in its own ids. `self` is in the renumbered ids.
CsrResult neighbour_graph(CsrValuesView queries, CsrValuesView targets_t, const float* query_norms,
                          const float* target_norms, const std::int32_t* self,
                          const std::int32_t* target_ids, NeighbourSettings settings,
                          int num_threads, const StopCheck& stop = {},
                          const Progress& progress = {});

// Scores of every item for every query row: scores = history (q x d) @ graph (d x n_items),
// and the k best items per row, best first, ties by the lower id. Items in the row's `exclude`
// list are skipped; with `candidates` (sorted ids, length n_candidates) only those items compete.
// Items nothing reaches score 0 and still compete; rows with fewer than k eligible items are
// padded with id -1 and score -inf. History and graph values must be >= 0 (what makes every
// unreached item an exact 0). Identical for any thread count.
void neighbour_topk(CsrValuesView history, CsrValuesView graph, int k, CsrView exclude,
                    const std::int32_t* candidates, std::int64_t n_candidates, int num_threads,
                    TopKOutput out, const StopCheck& stop = {});

// The dense scores neighbour_topk ranks: out (q x n_items, row-major, caller-allocated) =
// history @ graph, each sum in neighbour_topk's order, so bitwise its scores (what a kNN model's
// score() returns). Any values; identical for any thread count.
void neighbour_scores(CsrValuesView history, CsrValuesView graph, int num_threads, float* out,
                      const StopCheck& stop = {});

}  // namespace semrec
