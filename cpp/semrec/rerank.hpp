// Maximal marginal relevance (MMR) re-ranking of candidate lists, batched over users.
#pragma once

#include <cstdint>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

// Candidate lists: rows x width item ids (-1 marks padding) and their relevance, row-major.
struct CandidateView {
  const std::int32_t* ids = nullptr;
  const float* relevance = nullptr;
  std::int64_t rows = 0;
  std::int64_t width = 0;
};

// Caller-allocated results, each rows x k, row-major. `positions` (the picked column of the
// candidate row) may be null.
struct RerankOutput {
  std::int32_t* ids = nullptr;
  float* relevance = nullptr;
  std::int32_t* positions = nullptr;
};

// Per row, picks k candidates greedily: first the most relevant, then each time the one that
// maximises lambda * relevance - (1 - lambda) * (max dot product with the picks so far); ties
// go to the earlier column. `embeddings` rows are the items' vectors, L2-normalised so the dot
// product is the cosine. Padding (-1) is never picked and a repeated id is picked at most once;
// rows with fewer than k distinct ids are padded with id -1, relevance -inf, position -1.
// Each pick costs O(width * dim); rows are independent, so the result is the same for any
// thread count.
void mmr(const CandidateView& candidates, const MatrixView& embeddings, int k, double lambda,
         int num_threads, RerankOutput out, const StopCheck& stop = {});

}  // namespace semrec
