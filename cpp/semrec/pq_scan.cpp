#include "semrec/pq_scan.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace semrec::pq {
namespace {

// Byte of the block row of sub-space s that holds item `lane`'s code, and the nibble's shift.
inline std::int64_t code_byte(std::int64_t s, std::int64_t lane) { return s * 16 + (lane & 15); }
inline int code_shift(std::int64_t lane) { return lane < 16 ? 0 : 4; }

// The scan adds the lookups of kGroup sub-spaces in bytes before widening them to 16-bit sums
// (most of its work is that widening), so a table entry is at most 255 / kGroup. 63 levels per
// row rank as well as 255 did: recall@10 over 1M MiniLM-shaped items, 100 queries, was 0.947 at
// rerank 743 and 0.958 at 1000 either way (the codes' own error is far larger than the rounding).
constexpr int kGroup = 4;
constexpr int kLevels = 255 / kGroup;

// Levels per table row: kLevels, fewer when the sum over the rows could exceed 32767.
inline std::int64_t levels_of(std::int64_t stored) {
  return std::min<std::int64_t>(kLevels, 32767 / stored);
}

// A query's tables, one 16-byte row per stored sub-space: entry c of row s is
// round((<q_s, centroid_sc> - min_c <q_s, centroid_sc>) / step), one step for every row, chosen
// so that the widest row spans `levels` (at most kLevels) and no sum over the rows can exceed
// 32767 (a signed 16-bit lane). The products are summed in double, where every float product is
// exact, so a fused multiply-add changes nothing and every build computes the same tables.
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
  const auto levels = static_cast<double>(levels_of(stored));
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
// returns bits (bit i: item i) that hold at least the lanes scoring `lowest` or more, so the scan
// visits only those (on a deep search a few percent of the blocks hold one, early on many more).
#if defined(__AVX512BW__)
// `upcoming` (null: none) is a block the scan reaches later: each 64 bytes of codes read here
// prefetch the same 64 bytes of it into L2, spread over the block's work (kPrefetchAhead).
std::uint32_t block_scores(const std::uint8_t* block, const std::uint8_t* upcoming,
                           const std::uint8_t* table, std::int64_t stored, int lowest,
                           std::uint16_t* scores) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512i sum[2], odd[2];  // [items 0-15, 16-31]: all bytes as 16-bit words, odd bytes alone
  sum[0] = sum[1] = odd[0] = odd[1] = _mm512_setzero_si512();
  for (std::int64_t s = 0; s < stored;) {
    const std::int64_t end = std::min(stored, s + 4 * kGroup);
    __m512i bytes[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    for (; s < end; s += 4) {  // 4 sub-spaces, one per 128-bit lane, summed in bytes
      if (upcoming != nullptr) __builtin_prefetch(upcoming + s * 16, 0, 2);
      const __m512i codes = _mm512_loadu_si512(block + s * 16);
      const __m512i rows = _mm512_loadu_si512(table + s * 16);
      bytes[0] =
          _mm512_add_epi8(bytes[0], _mm512_shuffle_epi8(rows, _mm512_and_si512(codes, low4)));
      bytes[1] = _mm512_add_epi8(
          bytes[1], _mm512_shuffle_epi8(rows, _mm512_and_si512(_mm512_srli_epi16(codes, 4), low4)));
    }
    for (int h = 0; h < 2; ++h) {
      sum[h] = _mm512_add_epi16(sum[h], bytes[h]);
      odd[h] = _mm512_add_epi16(odd[h], _mm512_srli_epi16(bytes[h], 8));
    }
  }
  const __m128i floor = _mm_set1_epi16(static_cast<std::int16_t>(lowest));
  std::uint32_t passed = 0;
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
    const std::uint32_t lanes = _mm_cmpge_epi16_mask(first, floor) |
                                static_cast<std::uint32_t>(_mm_cmpge_epi16_mask(second, floor))
                                    << 8;
    passed |= lanes << (16 * h);
  }
  return passed;
}
#elif defined(__AVX2__)
// Adds the lookups of kPairs pairs of sub-spaces (32 code bytes and 32 table bytes each) into
// lo (items 0-15) and hi (items 16-31), one sub-space per 128-bit lane. Unrolled (a loop over a
// run-time count spent a third of its instructions on itself): a block of codes in cache took
// 72-76 ns instead of 79-82 on one Zen 3 core, whose scan is compute-bound at ~20 GB/s.
// `upcoming` (null: none) as in the AVX-512 kernel: one prefetch per 64 bytes of codes read.
template <int kPairs>
[[gnu::always_inline]] inline void add_lookups(const std::uint8_t* codes, const std::uint8_t* rows,
                                               const std::uint8_t* upcoming, __m256i& lo,
                                               __m256i& hi) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 8
  for (int i = 0; i < kPairs; ++i) {
    if (upcoming != nullptr && i % 2 == 0) __builtin_prefetch(upcoming + 32 * i, 0, 2);
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * i));
    const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + 32 * i));
    lo = _mm256_add_epi8(lo, _mm256_shuffle_epi8(t, _mm256_and_si256(c, low4)));
    hi = _mm256_add_epi8(hi,
                         _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low4)));
  }
}

std::uint32_t block_scores(const std::uint8_t* block, const std::uint8_t* upcoming,
                           const std::uint8_t* table, std::int64_t stored, int lowest,
                           std::uint16_t* scores) {
  __m256i sum[2], odd[2];  // as in the AVX-512 kernel, 2 sub-spaces per register
  sum[0] = sum[1] = odd[0] = odd[1] = _mm256_setzero_si256();
  const auto widen = [&](const __m256i(&bytes)[2]) {
    for (int h = 0; h < 2; ++h) {
      sum[h] = _mm256_add_epi16(sum[h], bytes[h]);
      odd[h] = _mm256_add_epi16(odd[h], _mm256_srli_epi16(bytes[h], 8));
    }
  };
  const auto ahead = [&](std::int64_t s) {
    return upcoming != nullptr ? upcoming + s * 16 : nullptr;
  };
  std::int64_t s = 0;
  for (; s + 2 * kGroup <= stored; s += 2 * kGroup) {  // kGroup lookups per byte
    __m256i bytes[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    add_lookups<kGroup>(block + s * 16, table + s * 16, ahead(s), bytes[0], bytes[1]);
    widen(bytes);
  }
  if (s < stored) {  // the last sub-spaces (stored is a multiple of 4: whole 64-byte lines)
    __m256i bytes[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (; s < stored; s += 4) {
      add_lookups<2>(block + s * 16, table + s * 16, ahead(s), bytes[0], bytes[1]);
    }
    widen(bytes);
  }
  // lowest - 1 >= -1: every score is in [0, 2^15), so the signed comparison is exact
  const __m128i below = _mm_set1_epi16(static_cast<std::int16_t>(lowest - 1));
  std::uint32_t passed = 0;
  for (int h = 0; h < 2; ++h) {
    const __m256i even = _mm256_sub_epi16(sum[h], _mm256_slli_epi16(odd[h], 8));
    const __m128i e =
        _mm_add_epi16(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
    const __m128i o =
        _mm_add_epi16(_mm256_castsi256_si128(odd[h]), _mm256_extracti128_si256(odd[h], 1));
    const __m128i first = _mm_unpacklo_epi16(e, o), second = _mm_unpackhi_epi16(e, o);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scores + 16 * h), first);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scores + 16 * h + 8), second);
    const __m128i at_least = _mm_packs_epi16(_mm_cmpgt_epi16(first, below),
                                             _mm_cmpgt_epi16(second, below));  // a byte per item
    passed |= static_cast<std::uint32_t>(_mm_movemask_epi8(at_least)) << (16 * h);
  }
  return passed;
}
#else
std::uint32_t block_scores(const std::uint8_t* block, const std::uint8_t* /*upcoming*/,
                           const std::uint8_t* table, std::int64_t stored, int lowest,
                           std::uint16_t* scores) {
  std::uint32_t passed = 0;
  for (std::int64_t lane = 0; lane < kBlock; ++lane) {
    int sum = 0;
    for (std::int64_t s = 0; s < stored; ++s) {
      sum += table[s * 16 + ((block[code_byte(s, lane)] >> code_shift(lane)) & 15)];
    }
    scores[lane] = static_cast<std::uint16_t>(sum);
    if (sum >= lowest) passed |= std::uint32_t{1} << lane;
  }
  return passed;
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

// The best `depth` of the items of one part, pushed in increasing id order. Scores are small
// integers, so a count per score gives at once the score `cut` of the depth-th best pushed so
// far: a later item scoring below it cannot enter, nor one scoring exactly it (the earlier items
// win the tie). The buffer is only ever filtered, and the kept items come out ranked by a
// counting sort: no partial sorts while scanning (they were most of a deep search's selection).
class Best {
 public:
  Best(std::int64_t depth, int max_score, Floor& floor)
      : depth_(depth), count_(static_cast<std::size_t>(max_score) + 1, 0), floor_(floor) {
    // Items scoring at least `cut` are fewer than 2 * depth (those scoring exactly it entered
    // while fewer than depth scored at least it), so a filter always frees room.
    kept_.reserve(static_cast<std::size_t>(2 * depth + 256));
  }
  // The lowest score that can still enter.
  int lowest() const { return std::max(entry_, floor_.get()); }
  void push(int score, std::int64_t id) {
    kept_.push_back(key_of(score, id));
    ++count_[score];
    if (++above_ >= depth_) {  // above_: items pushed scoring at least cut_ (every one, so far)
      const int was = cut_;
      while (above_ - count_[cut_] >= depth_) above_ -= count_[cut_++];
      entry_ = cut_ + 1;
      if (cut_ != was) floor_.raise(cut_);
    }
    if (kept_.size() == kept_.capacity()) drop_below_cut();
  }
  // The kept items, best first: at most `depth`.
  std::vector<Key> ranked() {
    drop_below_cut();
    std::int64_t at = 0;  // count_[s] becomes where the items scoring s start
    for (auto s = static_cast<std::int64_t>(count_.size()) - 1; s >= cut_; --s) {
      const std::int64_t n = count_[s];
      count_[s] = at;
      at += n;
    }
    std::vector<Key> out(static_cast<std::size_t>(at));
    for (const Key key : kept_) out[count_[score_of(key)]++] = key;  // ids stay increasing
    out.resize(static_cast<std::size_t>(std::min(at, depth_)));
    return out;
  }

 private:
  void drop_below_cut() {
    kept_.erase(
        std::remove_if(kept_.begin(), kept_.end(), [&](Key key) { return score_of(key) < cut_; }),
        kept_.end());
  }
  std::int64_t depth_;
  std::vector<std::int64_t> count_;  // items pushed per score
  Floor& floor_;
  std::int64_t above_ = 0;
  int cut_ = 0, entry_ = 0;
  std::vector<Key> kept_;
};

// The SIMD kernels prefetch the block this far ahead (48 KB at m = 96) into L2, one 64-byte
// line with each line of codes they read, so the prefetches are spread over the block's work.
// 1M items, m = 96, two threads, right after an exact scan (session 21, Intel Xeon with AMX):
// AVX-512 scan 1.8 ms against 2.3 with no prefetch and 2.6 with the burst into L1 of the whole
// block 4 ahead at each block's start that it replaces (which holds the L1 fill buffers the
// loads need); the AVX2 kernel on that CPU 1.9-2.0 ms against 2.9-3.0 with the burst. On a
// Zen 3 VM the burst had taken the scan from 3.3-4.0 to 2.5-3.3 ms (session 18) and spreading
// it was neutral (session 20); this L2 prefetch is not measured there.
constexpr std::int64_t kPrefetchAhead = 32;

void scan(const std::uint8_t* blocks, std::int64_t bytes_per_block, const std::uint8_t* table,
          std::int64_t stored, std::int64_t n_items, std::int64_t first_block,
          std::int64_t last_block, Best& best) {
  alignas(64) std::uint16_t scores[kBlock];
  int lowest = best.lowest();
  for (std::int64_t b = first_block; b < last_block; ++b) {
    const std::uint8_t* upcoming =
        b + kPrefetchAhead < last_block ? blocks + (b + kPrefetchAhead) * bytes_per_block : nullptr;
    std::uint32_t passed =
        block_scores(blocks + b * bytes_per_block, upcoming, table, stored, lowest, scores);
    const std::int64_t lanes = n_items - b * kBlock;  // the last block may be partly padding
    if (lanes < kBlock) passed &= (std::uint32_t{1} << lanes) - 1;
    while (passed != 0) {  // in increasing lane (id) order, as Best requires
      const int lane = __builtin_ctz(passed);
      passed &= passed - 1;
      if (scores[lane] >= lowest) {  // pushing may have raised it
        best.push(scores[lane], b * kBlock + lane);
        lowest = best.lowest();
      }
    }
    if ((b & 63) == 0) lowest = best.lowest();  // other parts raise the floor too
  }
}

// The ids of the best `depth` of ranked lists of keys (each best first) into out, -1 after them.
void write_best(const std::vector<std::vector<Key>>& lists, std::int64_t depth, std::int32_t* out) {
  std::vector<Key> all, merged;
  for (const std::vector<Key>& keys : lists) {
    merged.clear();
    std::merge(all.begin(), all.end(), keys.begin(), keys.end(), std::back_inserter(merged),
               std::greater<>());
    if (static_cast<std::int64_t>(merged.size()) > depth) {
      merged.resize(static_cast<std::size_t>(depth));
    }
    all.swap(merged);
  }
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
  const int top = static_cast<int>(levels_of(stored) * stored);  // the highest possible score
  auto table_of = [&](std::int64_t q) {
    std::vector<std::uint8_t> table(static_cast<std::size_t>(stored * 16));
    make_table(queries + q * book.m * book.dsub, book, table.data());
    return table;
  };
  if (nq >= num_threads) {  // a query per task, every block
    parallel_tasks(nq, num_threads, stop, [&](std::int64_t q) {
      const std::vector<std::uint8_t> table = table_of(q);
      Floor floor;
      Best best(depth, top, floor);
      scan(blocks, bytes, table.data(), stored, n_items, 0, n_blocks, best);
      write_best({best.ranked()}, depth, out + q * depth);
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
      Best best(depth, top, floor);
      scan(blocks, bytes, table.data(), stored, n_items, n_blocks * p / parts,
           n_blocks * (p + 1) / parts, best);
      found[p] = best.ranked();
    });
    write_best(found, depth, out + q * depth);
  }
}

}  // namespace semrec::pq
