#include "semrec/pq_scan.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

namespace semrec::pq {
namespace {

// Byte of the block row of sub-space s that holds item `lane`'s code, and the nibble's shift.
inline std::int64_t code_byte(std::int64_t s, std::int64_t lane) { return s * 16 + (lane & 15); }
inline int code_shift(std::int64_t lane) { return lane < 16 ? 0 : 4; }

// A query's tables, one 16-byte row per stored sub-space: entry c of row s is
// round((<q_s, centroid_sc> - min_c <q_s, centroid_sc>) / step), one step for every row, chosen
// so that the widest row spans `levels` and no sum over the rows can exceed 32767 (a signed
// 16-bit lane). The products are summed in double, where every float product is exact, so a
// fused multiply-add changes nothing and every build computes the same tables.
void make_table(const float* q, const Codebook& book, std::uint8_t* table) {
  const std::int64_t stored = stored_subspaces(book.m);
  std::vector<double> dots(static_cast<std::size_t>(book.m * kCentroids));
  double widest = 0.0;
  for (std::int64_t s = 0; s < book.m; ++s) {
    double lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < kCentroids; ++c) {
      const float* centroid = book.centroids + (s * kCentroids + c) * book.dsub;
      double dot = 0.0;
      for (std::int64_t d = 0; d < book.dsub; ++d) {
        dot += static_cast<double>(q[s * book.dsub + d]) * static_cast<double>(centroid[d]);
      }
      dots[s * kCentroids + c] = dot;
      lo = std::min(lo, dot);
      hi = std::max(hi, dot);
    }
    widest = std::max(widest, hi - lo);
  }
  const double levels = static_cast<double>(std::min<std::int64_t>(255, 32767 / stored));
  const double step = widest / levels;
  std::fill(table, table + stored * 16, std::uint8_t{0});
  for (std::int64_t s = 0; s < book.m; ++s) {
    const double* row = dots.data() + s * kCentroids;
    const double lo = *std::min_element(row, row + kCentroids);
    for (int c = 0; c < kCentroids; ++c) {
      const double level = step > 0.0 ? std::nearbyint((row[c] - lo) / step) : 0.0;
      table[s * 16 + c] = static_cast<std::uint8_t>(std::clamp(level, 0.0, levels));
    }
  }
}

// The 32 items of one block: scores[i] = sum over the sub-spaces of table[s][code(i, s)];
// returns the largest.
#if defined(__AVX512BW__)
int block_scores(const std::uint8_t* block, const std::uint8_t* table, std::int64_t stored,
                 std::uint16_t* scores) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512i sum[2], odd[2];  // [items 0-15, 16-31]: all bytes as 16-bit words, odd bytes alone
  sum[0] = sum[1] = odd[0] = odd[1] = _mm512_setzero_si512();
  for (std::int64_t s = 0; s < stored; s += 4) {  // 4 sub-spaces, one per 128-bit lane
    const __m512i codes = _mm512_loadu_si512(block + s * 16);
    const __m512i rows = _mm512_loadu_si512(table + s * 16);
    const __m512i looked[2] = {
        _mm512_shuffle_epi8(rows, _mm512_and_si512(codes, low4)),
        _mm512_shuffle_epi8(rows, _mm512_and_si512(_mm512_srli_epi16(codes, 4), low4))};
    for (int h = 0; h < 2; ++h) {
      sum[h] = _mm512_add_epi16(sum[h], looked[h]);
      odd[h] = _mm512_add_epi16(odd[h], _mm512_srli_epi16(looked[h], 8));
    }
  }
  __m128i best = _mm_setzero_si128();
  for (int h = 0; h < 2; ++h) {
    // even bytes' sums = all - odd * 256 (exact: every true sum is below 2^15)
    const __m512i even = _mm512_sub_epi16(sum[h], _mm512_slli_epi16(odd[h], 8));
    __m128i e = _mm512_castsi512_si128(even), o = _mm512_castsi512_si128(odd[h]);
    e = _mm_add_epi16(
        _mm_add_epi16(e, _mm512_extracti32x4_epi32(even, 1)),
        _mm_add_epi16(_mm512_extracti32x4_epi32(even, 2), _mm512_extracti32x4_epi32(even, 3)));
    o = _mm_add_epi16(
        _mm_add_epi16(o, _mm512_extracti32x4_epi32(odd[h], 1)),
        _mm_add_epi16(_mm512_extracti32x4_epi32(odd[h], 2), _mm512_extracti32x4_epi32(odd[h], 3)));
    const __m128i first = _mm_unpacklo_epi16(e, o), second = _mm_unpackhi_epi16(e, o);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scores + 16 * h), first);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scores + 16 * h + 8), second);
    best = _mm_max_epi16(best, _mm_max_epi16(e, o));
  }
  best = _mm_max_epi16(best, _mm_srli_si128(best, 8));
  best = _mm_max_epi16(best, _mm_srli_si128(best, 4));
  best = _mm_max_epi16(best, _mm_srli_si128(best, 2));
  return _mm_extract_epi16(best, 0);
}
#elif defined(__AVX2__)
int block_scores(const std::uint8_t* block, const std::uint8_t* table, std::int64_t stored,
                 std::uint16_t* scores) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256i sum[2], odd[2];  // as in the AVX-512 kernel, 2 sub-spaces per register
  sum[0] = sum[1] = odd[0] = odd[1] = _mm256_setzero_si256();
  for (std::int64_t s = 0; s < stored; s += 2) {
    const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + s * 16));
    const __m256i rows = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + s * 16));
    const __m256i looked[2] = {
        _mm256_shuffle_epi8(rows, _mm256_and_si256(codes, low4)),
        _mm256_shuffle_epi8(rows, _mm256_and_si256(_mm256_srli_epi16(codes, 4), low4))};
    for (int h = 0; h < 2; ++h) {
      sum[h] = _mm256_add_epi16(sum[h], looked[h]);
      odd[h] = _mm256_add_epi16(odd[h], _mm256_srli_epi16(looked[h], 8));
    }
  }
  __m128i best = _mm_setzero_si128();
  for (int h = 0; h < 2; ++h) {
    const __m256i even = _mm256_sub_epi16(sum[h], _mm256_slli_epi16(odd[h], 8));
    const __m128i e =
        _mm_add_epi16(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
    const __m128i o =
        _mm_add_epi16(_mm256_castsi256_si128(odd[h]), _mm256_extracti128_si256(odd[h], 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scores + 16 * h), _mm_unpacklo_epi16(e, o));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scores + 16 * h + 8), _mm_unpackhi_epi16(e, o));
    best = _mm_max_epi16(best, _mm_max_epi16(e, o));
  }
  best = _mm_max_epi16(best, _mm_srli_si128(best, 8));
  best = _mm_max_epi16(best, _mm_srli_si128(best, 4));
  best = _mm_max_epi16(best, _mm_srli_si128(best, 2));
  return _mm_extract_epi16(best, 0);
}
#else
int block_scores(const std::uint8_t* block, const std::uint8_t* table, std::int64_t stored,
                 std::uint16_t* scores) {
  int best = 0;
  for (std::int64_t lane = 0; lane < kBlock; ++lane) {
    int sum = 0;
    for (std::int64_t s = 0; s < stored; ++s) {
      sum += table[s * 16 + ((block[code_byte(s, lane)] >> code_shift(lane)) & 15)];
    }
    scores[lane] = static_cast<std::uint16_t>(sum);
    best = std::max(best, sum);
  }
  return best;
}
#endif

// The index of the smallest of 16 distances (the first of equal ones).
#if defined(__AVX512F__)
inline int nearest(const float* distance) {
  const __m512 v = _mm512_loadu_ps(distance);
  const __mmask16 at = _mm512_cmp_ps_mask(v, _mm512_set1_ps(_mm512_reduce_min_ps(v)), _CMP_EQ_OQ);
  return __builtin_ctz(static_cast<unsigned>(at));
}
#elif defined(__AVX2__)
inline int nearest(const float* distance) {
  const __m256 lo = _mm256_loadu_ps(distance), hi = _mm256_loadu_ps(distance + 8);
  __m256 least = _mm256_min_ps(lo, hi);
  least = _mm256_min_ps(least, _mm256_permute2f128_ps(least, least, 1));
  least = _mm256_min_ps(least, _mm256_shuffle_ps(least, least, 0x4e));
  least = _mm256_min_ps(least, _mm256_shuffle_ps(least, least, 0xb1));
  const unsigned at =
      static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(lo, least, _CMP_EQ_OQ))) |
      static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(hi, least, _CMP_EQ_OQ))) << 8;
  return __builtin_ctz(at);
}
#else
inline int nearest(const float* distance) {
  return static_cast<int>(std::min_element(distance, distance + kCentroids) - distance);
}
#endif

// An item as one integer that orders as the ranking does: the score above, then the id
// reversed (the lower id is the larger key), so a plain integer comparison sorts.
using Key = std::uint64_t;
inline Key key_of(int score, std::int64_t id) {
  return static_cast<Key>(score) << 32 | static_cast<Key>(0x7fffffff - id);
}
inline int score_of(Key key) { return static_cast<int>(key >> 32); }
inline std::int32_t id_of(Key key) {
  return static_cast<std::int32_t>(0x7fffffff - (key & 0xffffffff));
}

// The lowest score worth keeping for one query, shared by the parts that scan it side by side:
// a part that holds `depth` items scoring at least t proves that no item scoring below t, in any
// part, is among the best `depth`. Pruning below it never changes the answer, only the work.
class Floor {
 public:
  int get() const { return value_.load(std::memory_order_relaxed); }
  void raise(int to) {
    int now = get();
    while (now < to && !value_.compare_exchange_weak(now, to, std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<int> value_{0};
};

// The best `depth` of the items pushed in increasing id order, kept in a buffer that is cut
// back to `depth` when full. After a cut every kept item beats any later item of a score no
// higher than the worst kept (the later one has the larger id), so only higher ones get in.
class Best {
 public:
  Best(std::int64_t depth, Floor& floor) : depth_(depth), floor_(floor) {
    kept_.reserve(static_cast<std::size_t>(std::max<std::int64_t>(2 * depth, depth + 256)));
  }
  // The lowest score that can still enter.
  int lowest() const { return std::max(threshold_ + 1, floor_.get()); }
  void push(int score, std::int64_t id) {
    kept_.push_back(key_of(score, id));
    if (kept_.size() == kept_.capacity()) cut();
  }
  std::vector<Key>& keys() { return kept_; }

 private:
  void cut() {
    std::nth_element(kept_.begin(), kept_.begin() + (depth_ - 1), kept_.end(), std::greater<>());
    kept_.resize(static_cast<std::size_t>(depth_));
    threshold_ = score_of(kept_.back());  // the worst kept: nth_element put it last
    floor_.raise(threshold_);
  }
  std::int64_t depth_;
  Floor& floor_;
  int threshold_ = -1;
  std::vector<Key> kept_;
};

void scan(const std::uint8_t* blocks, std::int64_t bytes_per_block, const std::uint8_t* table,
          std::int64_t stored, std::int64_t n_items, std::int64_t first_block,
          std::int64_t last_block, Best& best) {
  alignas(64) std::uint16_t scores[kBlock];
  int lowest = best.lowest();
  for (std::int64_t b = first_block; b < last_block; ++b) {
    const int top = block_scores(blocks + b * bytes_per_block, table, stored, scores);
    if (top < lowest) continue;
    const std::int64_t lanes = std::min(kBlock, n_items - b * kBlock);
    for (std::int64_t lane = 0; lane < lanes; ++lane) {
      if (scores[lane] >= lowest) {
        best.push(scores[lane], b * kBlock + lane);
        lowest = best.lowest();
      }
    }
    if ((b & 63) == 0) lowest = best.lowest();  // other parts raise the floor too
  }
}

// Cuts keys to their best `depth`, unordered (linear time).
void keep_best(std::vector<Key>& keys, std::int64_t depth) {
  if (static_cast<std::int64_t>(keys.size()) <= depth) return;
  std::nth_element(keys.begin(), keys.begin() + (depth - 1), keys.end(), std::greater<>());
  keys.resize(static_cast<std::size_t>(depth));
}

// The best `depth` of all keys (in order) into out, -1 after them.
void write_best(std::vector<Key>& all, std::int64_t depth, std::int32_t* out) {
  keep_best(all, depth);
  std::sort(all.begin(), all.end(), std::greater<>());
  for (std::int64_t i = 0; i < depth; ++i) {
    out[i] = i < static_cast<std::int64_t>(all.size()) ? id_of(all[i]) : -1;
  }
}

}  // namespace

void pack(const std::uint8_t* codes, std::int64_t n, std::int64_t m, std::uint8_t* blocks,
          std::int64_t first) {
  const std::int64_t bytes = block_bytes(m);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t item = first + i, lane = item % kBlock;
    std::uint8_t* block = blocks + item / kBlock * bytes;
    const int shift = code_shift(lane);
    const auto keep = static_cast<std::uint8_t>(0xf0 >> shift);  // the other item's half
    for (std::int64_t s = 0; s < m; ++s) {
      std::uint8_t& byte = block[code_byte(s, lane)];
      byte = static_cast<std::uint8_t>((byte & keep) | ((codes[i * m + s] & 15) << shift));
    }
  }
}

void unpack(const std::uint8_t* blocks, std::int64_t first, std::int64_t n, std::int64_t m,
            std::uint8_t* codes) {
  const std::int64_t bytes = block_bytes(m);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t item = first + i, lane = item % kBlock;
    const std::uint8_t* block = blocks + item / kBlock * bytes;
    for (std::int64_t s = 0; s < m; ++s) {
      codes[i * m + s] = (block[code_byte(s, lane)] >> code_shift(lane)) & 15;
    }
  }
}

void encode(const float* rows, std::int64_t n, const Codebook& book, int num_threads,
            std::uint8_t* codes, const StopCheck& stop) {
  constexpr std::int64_t kRowsPerTask = 4096;
  const std::int64_t width = book.m * book.dsub;
  // Centroids as [sub-space][dimension][centroid]: the 16 distances of one sub-space are one
  // vector loop. Built with -ffp-contract=off (CMakeLists.txt), every instruction set rounds
  // each difference, square and sum alike, so the codes are the same on every CPU.
  std::vector<float> by_dim(static_cast<std::size_t>(width * kCentroids));
  for (std::int64_t s = 0; s < book.m; ++s) {
    for (int c = 0; c < kCentroids; ++c) {
      for (std::int64_t d = 0; d < book.dsub; ++d) {
        by_dim[(s * book.dsub + d) * kCentroids + c] =
            book.centroids[(s * kCentroids + c) * book.dsub + d];
      }
    }
  }
  parallel_tasks((n + kRowsPerTask - 1) / kRowsPerTask, num_threads, stop, [&](std::int64_t t) {
    for (std::int64_t i = t * kRowsPerTask; i < std::min(n, (t + 1) * kRowsPerTask); ++i) {
      const float* x = rows + i * width;
      for (std::int64_t s = 0; s < book.m; ++s) {
        float distance[kCentroids] = {};
        for (std::int64_t d = s * book.dsub; d < (s + 1) * book.dsub; ++d) {
          const float* centroid = by_dim.data() + d * kCentroids;
          for (int c = 0; c < kCentroids; ++c) {
            const float diff = x[d] - centroid[c];
            distance[c] += diff * diff;
          }
        }
        codes[i * book.m + s] = static_cast<std::uint8_t>(nearest(distance));
      }
    }
  });
}

void search(const float* queries, std::int64_t nq, const Codebook& book, const std::uint8_t* blocks,
            std::int64_t n_items, std::int64_t depth, int num_threads, std::int32_t* out,
            const StopCheck& stop) {
  if (depth < 1) throw std::invalid_argument("depth must be >= 1");
  num_threads = usable_threads(num_threads);
  const std::int64_t stored = stored_subspaces(book.m), bytes = block_bytes(book.m);
  const std::int64_t n_blocks = (n_items + kBlock - 1) / kBlock;
  auto table_of = [&](std::int64_t q) {
    std::vector<std::uint8_t> table(static_cast<std::size_t>(stored * 16));
    make_table(queries + q * book.m * book.dsub, book, table.data());
    return table;
  };
  if (nq >= num_threads) {  // a query per task, every block
    parallel_tasks(nq, num_threads, stop, [&](std::int64_t q) {
      const std::vector<std::uint8_t> table = table_of(q);
      Floor floor;
      Best best(depth, floor);
      scan(blocks, bytes, table.data(), stored, n_items, 0, n_blocks, best);
      write_best(best.keys(), depth, out + q * depth);
    });
    return;
  }
  // Few queries: each split into a part per thread (each part's buffer fills before its
  // threshold rises, so more parts cost more), whose best are merged; the union of the parts'
  // best holds the overall best.
  const std::int64_t parts = std::min<std::int64_t>(std::max<std::int64_t>(1, n_blocks),
                                                    static_cast<std::int64_t>(num_threads));
  std::vector<std::vector<Key>> found(static_cast<std::size_t>(parts));
  for (std::int64_t q = 0; q < nq; ++q) {
    const std::vector<std::uint8_t> table = table_of(q);
    Floor floor;
    parallel_tasks(parts, num_threads, stop, [&](std::int64_t p) {
      Best best(depth, floor);
      scan(blocks, bytes, table.data(), stored, n_items, n_blocks * p / parts,
           n_blocks * (p + 1) / parts, best);
      keep_best(best.keys(), depth);  // here, in parallel: the merge below stays short
      found[p] = std::move(best.keys());
    });
    std::vector<Key> all;
    for (const std::vector<Key>& part : found) all.insert(all.end(), part.begin(), part.end());
    write_best(all, depth, out + q * depth);
  }
}

}  // namespace semrec::pq
