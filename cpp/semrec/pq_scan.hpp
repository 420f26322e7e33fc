// Product-quantised codes scanned with in-register table lookups: the first pass of
// semrec.PQIndex, which re-scores the best items it proposes exactly.
//
// Every item is m codes of 4 bits (the nearest of 16 centroids in each of m sub-spaces). A query
// turns into one table per sub-space (its inner products with the 16 centroids) rounded to
// small unsigned integers on one common step, so an item's approximate score is an exact integer
// sum of m table entries, and the ranking of those sums is the same on every instruction set
// and for every thread count. Codes are stored in blocks of kBlock items in which a 16-byte row
// per sub-space holds item b's code in the low half of byte b and item b + 16's in the high
// half: one byte shuffle then looks up 16 items at once (32 or 64 bytes: 2 or 4 sub-spaces).
#pragma once

#include <cstdint>

#include "semrec/parallel.hpp"

namespace semrec::pq {

constexpr std::int64_t kBlock = 32;  // items per block
constexpr int kCentroids = 16;       // per sub-space (4-bit codes)

// Sub-spaces as stored: m rounded up to a multiple of 4 (the padding codes and tables are 0).
inline std::int64_t stored_subspaces(std::int64_t m) { return (m + 3) / 4 * 4; }

// Bytes of one block of codes of m sub-spaces.
inline std::int64_t block_bytes(std::int64_t m) { return stored_subspaces(m) * 16; }

// Bytes of the blocks that hold n items of m sub-spaces.
inline std::int64_t blocks_bytes(std::int64_t n, std::int64_t m) {
  return (n + kBlock - 1) / kBlock * block_bytes(m);
}

// Writes the codes of n items (n x m bytes, each in [0, 16)) as items first, first + 1, ... of
// the blocks at `blocks` (which must cover them), leaving every other item's codes unchanged.
void pack(const std::uint8_t* codes, std::int64_t n, std::int64_t m, std::uint8_t* blocks,
          std::int64_t first);

// The codes of items [first, first + n) of `blocks` as n x m bytes (pack's inverse).
void unpack(const std::uint8_t* blocks, std::int64_t first, std::int64_t n, std::int64_t m,
            std::uint8_t* codes);

struct Codebook {
  const float* centroids;  // m x kCentroids x dsub, row-major
  std::int64_t m;
  std::int64_t dsub;
};

// The code of each of n rows (m * dsub floats): per sub-space the nearest centroid (squared
// Euclidean distance in float, ties to the lower index), into codes (n x m).
void encode(const float* rows, std::int64_t n, const Codebook& book, int num_threads,
            std::uint8_t* codes, const StopCheck& stop);

// For each of nq queries (rows of m * dsub floats), the ids of its `depth` items of highest
// approximate score among n_items (ties to the lower id) in that order, into out[q * depth ...],
// padded with -1 when n_items < depth.
void search(const float* queries, std::int64_t nq, const Codebook& book, const std::uint8_t* blocks,
            std::int64_t n_items, std::int64_t depth, int num_threads, std::int32_t* out,
            const StopCheck& stop);

}  // namespace semrec::pq
