#include "semrec/similarity.hpp"

#include <Eigen/Core>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "semrec/topk_selector.hpp"

namespace semrec {
namespace {

using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------------
// Dot products with one fixed summation order.
//
// Every score is q[0]*x[0] + q[1]*x[1] + ... accumulated left to right, one fused multiply-add
// per term where the instruction set has FMA (explicit intrinsics; the core is built with
// -ffp-contract=off so the compiler never fuses on its own), multiply then add elsewhere. All
// kernels below follow that order exactly, so a score is bitwise the same whichever kernel,
// block position, batch size or thread computed it: identical items tie exactly and the tie
// goes to the lower id. (Eigen's GEMM sums in different orders for edge rows, which broke that.)

// A register tile is kItemRows items x kVecs vectors of queries (kLanes floats each).
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kVecs = 4;  // 6 x 4 accumulators (of 32 zmm): 24 FMAs per 10 loads
constexpr int kItemRows = 6;
#elif defined(__AVX2__)
constexpr int kLanes = 8;
constexpr int kVecs = 2;
constexpr int kItemRows = 6;  // 6 x 2 accumulators (of 16 ymm)
#else
constexpr int kLanes = 4;
constexpr int kVecs = 2;
constexpr int kItemRows = 4;  // 4 x 2 accumulators (of 16 xmm)
#endif
constexpr std::int64_t kQueryTile = kVecs * kLanes;  // queries per register tile

typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
// The same vector, for loads and stores at any float-aligned address.
typedef float VecMem __attribute__((vector_size(kLanes * sizeof(float)), aligned(4), may_alias));

// c + a * b, rounded once where the CPU has FMA.
inline Vec madd(float a, Vec b, Vec c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c);
#elif defined(__FMA__) && defined(__AVX2__)
  return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c);
#else
  return c + a * b;
#endif
}

inline float madd(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return c + a * b;
#endif
}

// Block shapes: 512 queries are packed once per task and reused for every item; within a depth
// block of 128 terms one packed query tile (32 KiB with AVX-512) stays in L1 while the item block's
// rows stream past it; the 512 x 512 score block (1 MiB) is scanned for the top k while in L2.
constexpr std::int64_t kQueryBlock = 512;
constexpr std::int64_t kItemBlock = 512;
constexpr std::int64_t kDepthBlock = 128;
// Below this many queries, lanes would mostly hold padding: use the per-query scan instead.
constexpr std::int64_t kMinTiledQueries = 8;
// Queries per task in the per-query kernels; items per scoring pass there.
constexpr std::int64_t kGatherBlock = 64;
constexpr std::int64_t kScanPiece = 2048;

// Copies queries [q0, q0 + n) into tiles packed[t][kk][kQueryTile], zero padded to whole tiles.
void pack_queries(const float* q, std::int64_t n, std::int64_t dim, float* packed) {
  const std::int64_t tiles = (n + kQueryTile - 1) / kQueryTile;
  std::fill(packed, packed + tiles * dim * kQueryTile, 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    float* dst = packed + (i / kQueryTile) * dim * kQueryTile + i % kQueryTile;
    const float* src = q + i * dim;
    for (std::int64_t kk = 0; kk < dim; ++kk) dst[kk * kQueryTile] = src[kk];
  }
}

// s[r][c] (+)= dot(item r, query c) over `depth` terms, for R items and one packed tile of
// kQueryTile queries. With `accumulate` the sums continue from s, so splitting the depth into
// blocks keeps the exact left-to-right order of the terms.
template <int R>
inline void tile_kernel(const float* tile, const float* const* x, std::int64_t depth,
                        bool accumulate, float* s, std::int64_t lds) {
  Vec acc[R][kVecs];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < kVecs; ++v) {
      acc[r][v] =
          accumulate ? Vec(*reinterpret_cast<const VecMem*>(s + r * lds + v * kLanes)) : Vec{};
    }
  }
  for (std::int64_t kk = 0; kk < depth; ++kk) {
    Vec b[kVecs];
    for (int v = 0; v < kVecs; ++v) {
      b[v] = *reinterpret_cast<const VecMem*>(tile + kk * kQueryTile + v * kLanes);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float a = x[r][kk];
      for (int v = 0; v < kVecs; ++v) acc[r][v] = madd(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < kVecs; ++v) {
      *reinterpret_cast<VecMem*>(s + r * lds + v * kLanes) = acc[r][v];
    }
  }
}

// out[r] = dot(q, x[r]) for 8 items at once (8 independent chains hide the FMA latency).
inline void dot8(const float* q, const float* const* x, int count, std::int64_t dim, float* out) {
  float acc[8] = {};
  for (std::int64_t kk = 0; kk < dim; ++kk) {
    const float a = q[kk];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) acc[r] = madd(a, x[r][kk], acc[r]);
  }
  for (int r = 0; r < count; ++r) out[r] = acc[r];
}

// Scores of query q against items item(0..n-1) into out[0..n-1].
template <class ItemRow>
void scan_scores(const float* q, std::int64_t dim, std::int64_t n, ItemRow item, float* out) {
  const float* rows[8];
  for (std::int64_t j = 0; j < n; j += 8) {
    const int count = static_cast<int>(std::min<std::int64_t>(8, n - j));
    for (int r = 0; r < 8; ++r) rows[r] = item(j + (r < count ? r : 0));
    dot8(q, rows, count, dim, out + j);
  }
}

float inverse_norm(const float* row, std::int64_t dim) {
  const float norm = ConstVectorMap(row, dim).norm();
  return norm > 0.0f ? 1.0f / norm : 0.0f;
}

// Feeds scores s[0..n) of items id(0), id(1), ... (increasing ids) to the selector. Most scores
// fall below the threshold, so 16 at a time are tested with one vectorised comparison first.
template <class Id>
void select_scores(const float* s, std::int64_t n, Id id, TopKSelector& top) {
  std::int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const float thr = top.threshold();
    int any = 0;
    for (int t = 0; t < 16; ++t) any |= static_cast<int>(s[j + t] > thr);
    if (!any) continue;
    for (int t = 0; t < 16; ++t) {
      if (s[j + t] > top.threshold()) top.push(s[j + t], id(j + t));
    }
  }
  for (; j < n; ++j) {
    if (s[j] > top.threshold()) top.push(s[j], id(j));
  }
}

// [0, n) cut into blocks of a fixed width (the last one shorter). Widths depend on the input
// sizes only, never on the thread count.
struct Blocks {
  std::int64_t n = 0, width = 1, count = 0;
  Blocks(std::int64_t n_, std::int64_t width_)
      : n(n_), width(width_), count((n_ + width_ - 1) / width_) {}
  std::int64_t begin(std::int64_t b) const { return b * width; }
  std::int64_t end(std::int64_t b) const { return std::min(n, (b + 1) * width); }
};

// Splits [0, n_tasks_per_row) further into chunks when there are too few rows of tasks to keep
// every thread busy; the per-chunk top-k lists are merged afterwards, exactly.
std::int64_t chunk_count(std::int64_t row_tasks, std::int64_t max_chunks, int num_threads) {
  if (row_tasks >= 2 * num_threads) return 1;
  return std::max<std::int64_t>(
      1, std::min(max_chunks, (4 * num_threads + row_tasks - 1) / row_tasks));
}

// Each query's per-chunk lists (chunks x k, best first, padded) merged into its final k.
void merge_chunks(std::int64_t nq, int k, std::int64_t chunks, const std::vector<std::int32_t>& ids,
                  const std::vector<float>& scores, int num_threads, const StopCheck& stop,
                  TopKOutput out) {
  parallel_tasks((nq + kGatherBlock - 1) / kGatherBlock, num_threads, stop, [&](std::int64_t t) {
    TopKSelector top(k);
    for (std::int64_t q = t * kGatherBlock; q < std::min(nq, (t + 1) * kGatherBlock); ++q) {
      // Chunks cover increasing id ranges, so feeding them in order keeps the tie rule.
      for (std::int64_t c = 0; c < chunks; ++c) {
        const std::int64_t off = (q * chunks + c) * k;
        for (int i = 0; i < k && ids[off + i] >= 0; ++i) top.push(scores[off + i], ids[off + i]);
      }
      top.write(out.ids + q * k, out.scores + q * k);
    }
  });
}

std::string shape_str(std::int64_t r, std::int64_t c) {
  return "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
}

void check_csr(const CsrView& m, std::int64_t rows, std::int64_t cols, const char* name) {
  if (!m.present()) return;
  if (m.rows != rows || m.cols != cols) {
    throw std::invalid_argument(std::string(name) + " has shape " + shape_str(m.rows, m.cols) +
                                ", expected " + shape_str(rows, cols));
  }
  if (m.indptr[0] != 0) throw std::invalid_argument(std::string(name) + ": indptr[0] must be 0");
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::int64_t a = m.indptr[i], b = m.indptr[i + 1];
    if (b < a) throw std::invalid_argument(std::string(name) + ": indptr must be non-decreasing");
    for (std::int64_t p = a; p < b; ++p) {
      const std::int32_t j = m.indices[p];
      if (j < 0 || j >= cols) {
        throw std::out_of_range(std::string(name) + ": index " + std::to_string(j) +
                                " out of range for " + std::to_string(cols) + " items");
      }
      if (p > a && j < m.indices[p - 1]) {
        throw std::invalid_argument(std::string(name) + ": indices must be sorted within rows");
      }
    }
  }
}

void check_common(MatrixView queries, MatrixView items, int k, CsrView exclude, TopKOutput out) {
  if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
  if (queries.rows < 0 || items.rows < 0 || queries.cols < 0) {
    throw std::invalid_argument("negative matrix size");
  }
  if (queries.cols != items.cols) {
    throw std::invalid_argument("queries have " + std::to_string(queries.cols) +
                                " columns but items have " + std::to_string(items.cols));
  }
  if (items.rows > std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument("more than 2^31 - 1 items");
  }
  if (queries.rows > 0 && (out.ids == nullptr || out.scores == nullptr)) {
    throw std::invalid_argument("output buffers are missing");
  }
  check_csr(exclude, queries.rows, items.rows, "exclude");
}

std::vector<float> inverse_norms(MatrixView m, int num_threads, const StopCheck& stop) {
  std::vector<float> inv(static_cast<std::size_t>(m.rows));
  constexpr std::int64_t kRows = 4096;
  parallel_tasks((m.rows + kRows - 1) / kRows, num_threads, stop, [&](std::int64_t t) {
    for (std::int64_t i = t * kRows; i < std::min(m.rows, (t + 1) * kRows); ++i) {
      inv[static_cast<std::size_t>(i)] = inverse_norm(m.row(i), m.cols);
    }
  });
  return inv;
}

void fill_padding(std::int64_t rows, int k, TopKOutput out) {
  std::fill(out.ids, out.ids + rows * k, -1);
  std::fill(out.scores, out.scores + rows * k, kNegInf);
}

// Many queries: tiles of queries in vector lanes times groups of items, one block at a time.
void topk_tiled(MatrixView queries, MatrixView items, int k, bool cosine,
                const std::vector<float>& inv_q, const std::vector<float>& inv_x, CsrView exclude,
                int num_threads, TopKOutput out, const StopCheck& stop) {
  const std::int64_t nq = queries.rows, dim = queries.cols;
  const Blocks qblocks(nq, kQueryBlock), iblocks(items.rows, kItemBlock);
  const std::int64_t chunks = chunk_count(qblocks.count, iblocks.count, num_threads);
  std::vector<std::int32_t> part_ids;
  std::vector<float> part_scores;
  if (chunks > 1) {
    part_ids.resize(static_cast<std::size_t>(nq * chunks * k));
    part_scores.resize(part_ids.size());
  }

  parallel_tasks(qblocks.count * chunks, num_threads, stop, [&](std::int64_t task) {
    const std::int64_t qb = task / chunks, chunk = task % chunks;
    const std::int64_t q0 = qblocks.begin(qb), nqb = qblocks.end(qb) - q0;
    const std::int64_t tiles = (nqb + kQueryTile - 1) / kQueryTile, lds = tiles * kQueryTile;
    const std::int64_t b0 = chunk * iblocks.count / chunks;
    const std::int64_t b1 = (chunk + 1) * iblocks.count / chunks;

    std::vector<float> packed(static_cast<std::size_t>(lds * dim));
    pack_queries(queries.row(q0), nqb, dim, packed.data());
    std::vector<float> scale(static_cast<std::size_t>(lds), 0.0f);
    if (cosine) std::copy(inv_q.begin() + q0, inv_q.begin() + q0 + nqb, scale.begin());

    std::vector<TopKSelector> tops(static_cast<std::size_t>(nqb), TopKSelector(k));
    std::vector<float> thresholds(static_cast<std::size_t>(nqb), kNegInf);
    std::vector<std::int64_t> cursor;  // next exclusion entry of each query
    if (exclude.present()) {
      cursor.resize(static_cast<std::size_t>(nqb));
      const auto first = static_cast<std::int32_t>(iblocks.begin(b0));
      for (std::int64_t q = 0; q < nqb; ++q) {
        const std::int32_t* a = exclude.indices + exclude.indptr[q0 + q];
        const std::int32_t* b = exclude.indices + exclude.indptr[q0 + q + 1];
        cursor[q] = std::lower_bound(a, b, first) - exclude.indices;
      }
    }

    std::vector<float> S(static_cast<std::size_t>(kItemBlock * lds));  // S[item][query]
    const float* rows[kItemRows];
    for (std::int64_t ib = b0; ib < b1; ++ib) {
      const std::int64_t i0 = iblocks.begin(ib), n = iblocks.end(ib) - i0;
      if (dim == 0) std::fill(S.begin(), S.end(), 0.0f);
      // Depth blocks keep one query tile's slice in L1 while the block's items stream past it.
      for (std::int64_t k0 = 0; k0 < dim; k0 += kDepthBlock) {
        const std::int64_t depth = std::min(kDepthBlock, dim - k0);
        for (std::int64_t t = 0; t < tiles; ++t) {
          const float* tile = packed.data() + (t * dim + k0) * kQueryTile;
          float* out_tile = S.data() + t * kQueryTile;
          std::int64_t g = 0;
          for (; g + kItemRows <= n; g += kItemRows) {
            for (int r = 0; r < kItemRows; ++r) rows[r] = items.row(i0 + g + r) + k0;
            tile_kernel<kItemRows>(tile, rows, depth, k0 > 0, out_tile + g * lds, lds);
          }
          for (; g < n; ++g) {
            rows[0] = items.row(i0 + g) + k0;
            tile_kernel<1>(tile, rows, depth, k0 > 0, out_tile + g * lds, lds);
          }
        }
      }
      if (cosine) {
        for (std::int64_t j = 0; j < n; ++j) {
          float* row = S.data() + j * lds;
          const float ix = inv_x[i0 + j];
          for (std::int64_t q = 0; q < lds; ++q) row[q] *= scale[q] * ix;
        }
      }
      if (exclude.present()) {
        for (std::int64_t q = 0; q < nqb; ++q) {
          std::int64_t& p = cursor[q];
          const std::int64_t end = exclude.indptr[q0 + q + 1];
          for (; p < end && exclude.indices[p] < i0 + n; ++p) {
            S[(exclude.indices[p] - i0) * lds + q] = kNegInf;
          }
        }
      }
      // Items in increasing id order; all queries of the block compared at once per item.
      for (std::int64_t j = 0; j < n; ++j) {
        const float* row = S.data() + j * lds;
        const auto id = static_cast<std::int32_t>(i0 + j);
        std::int64_t q = 0;
        for (; q + 16 <= nqb; q += 16) {
          // One vector comparison for 16 queries; only the lanes that pass touch a heap.
          unsigned mask = 0;
          for (int t = 0; t < 16; ++t) mask |= unsigned{row[q + t] > thresholds[q + t]} << t;
          while (mask != 0) {
            const std::int64_t t = q + std::countr_zero(mask);
            mask &= mask - 1;
            tops[t].push(row[t], id);
            thresholds[t] = tops[t].threshold();
          }
        }
        for (; q < nqb; ++q) {
          if (row[q] > thresholds[q]) {
            tops[q].push(row[q], id);
            thresholds[q] = tops[q].threshold();
          }
        }
      }
    }

    for (std::int64_t q = 0; q < nqb; ++q) {
      const std::int64_t off = chunks == 1 ? (q0 + q) * k : ((q0 + q) * chunks + chunk) * k;
      tops[q].write((chunks == 1 ? out.ids : part_ids.data()) + off,
                    (chunks == 1 ? out.scores : part_scores.data()) + off);
    }
  });
  if (chunks > 1) merge_chunks(nq, k, chunks, part_ids, part_scores, num_threads, stop, out);
}

// Few queries: each query scans item ranges on its own (8 items at a time), ranges in parallel.
void topk_scan(MatrixView queries, MatrixView items, int k, bool cosine,
               const std::vector<float>& inv_q, const std::vector<float>& inv_x, CsrView exclude,
               int num_threads, TopKOutput out, const StopCheck& stop) {
  const std::int64_t nq = queries.rows, dim = queries.cols;
  const Blocks pieces(items.rows, kScanPiece);
  const std::int64_t chunks = chunk_count(nq, pieces.count, num_threads);
  std::vector<std::int32_t> part_ids(static_cast<std::size_t>(nq * chunks * k));
  std::vector<float> part_scores(part_ids.size());

  parallel_tasks(nq * chunks, num_threads, stop, [&](std::int64_t task) {
    const std::int64_t q = task / chunks, chunk = task % chunks;
    const std::int64_t p0 = chunk * pieces.count / chunks, p1 = (chunk + 1) * pieces.count / chunks;
    const float* query = queries.row(q);
    TopKSelector top(k);
    std::vector<float> s(static_cast<std::size_t>(kScanPiece));
    std::int64_t e = 0, e_end = 0;
    if (exclude.present()) {
      const std::int32_t* a = exclude.indices + exclude.indptr[q];
      const std::int32_t* b = exclude.indices + exclude.indptr[q + 1];
      e = std::lower_bound(a, b, static_cast<std::int32_t>(pieces.begin(p0))) - exclude.indices;
      e_end = exclude.indptr[q + 1];
    }
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::int64_t i0 = pieces.begin(p), n = pieces.end(p) - i0;
      scan_scores(query, dim, n, [&](std::int64_t j) { return items.row(i0 + j); }, s.data());
      if (cosine) {
        for (std::int64_t j = 0; j < n; ++j) s[j] *= inv_q[q] * inv_x[i0 + j];
      }
      for (; e < e_end && exclude.indices[e] < i0 + n; ++e) s[exclude.indices[e] - i0] = kNegInf;
      select_scores(
          s.data(), n, [&](std::int64_t j) { return static_cast<std::int32_t>(i0 + j); }, top);
    }
    const std::int64_t off = (q * chunks + chunk) * k;
    top.write(part_ids.data() + off, part_scores.data() + off);
  });
  merge_chunks(nq, k, chunks, part_ids, part_scores, num_threads, stop, out);
}

}  // namespace

void topk(MatrixView queries, MatrixView items, int k, Metric metric, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, items, k, exclude, out);
  if (queries.rows == 0) return;
  if (items.rows == 0) return fill_padding(queries.rows, k, out);
  const bool cosine = metric == Metric::cosine;
  std::vector<float> inv_q, inv_x;
  if (cosine) {
    inv_q = inverse_norms(queries, num_threads, stop);
    inv_x = inverse_norms(items, num_threads, stop);
  }
  if (queries.rows >= kMinTiledQueries) {
    topk_tiled(queries, items, k, cosine, inv_q, inv_x, exclude, num_threads, out, stop);
  } else {
    topk_scan(queries, items, k, cosine, inv_q, inv_x, exclude, num_threads, out, stop);
  }
}

void topk_candidates(MatrixView queries, MatrixView items, CsrView candidates, int k, Metric metric,
                     CsrView exclude, int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, items, k, exclude, out);
  if (!candidates.present()) throw std::invalid_argument("candidates are missing");
  check_csr(candidates, queries.rows, items.rows, "candidates");
  const std::int64_t nq = queries.rows, dim = queries.cols;
  const bool cosine = metric == Metric::cosine;

  parallel_tasks((nq + kGatherBlock - 1) / kGatherBlock, num_threads, stop, [&](std::int64_t t) {
    TopKSelector top(k);
    std::vector<std::int32_t> ids;
    std::vector<float> s;
    for (std::int64_t q = t * kGatherBlock; q < std::min(nq, (t + 1) * kGatherBlock); ++q) {
      // The query's distinct, non-excluded candidates, in increasing id order.
      ids.clear();
      std::int64_t e = exclude.present() ? exclude.indptr[q] : 0;
      const std::int64_t e_end = exclude.present() ? exclude.indptr[q + 1] : 0;
      for (std::int64_t p = candidates.indptr[q]; p < candidates.indptr[q + 1]; ++p) {
        const std::int32_t j = candidates.indices[p];
        if (!ids.empty() && ids.back() == j) continue;
        while (e < e_end && exclude.indices[e] < j) ++e;
        if (e < e_end && exclude.indices[e] == j) continue;
        ids.push_back(j);
      }
      const auto n = static_cast<std::int64_t>(ids.size());
      s.resize(ids.size());
      const float* query = queries.row(q);
      scan_scores(query, dim, n, [&](std::int64_t i) { return items.row(ids[i]); }, s.data());
      if (cosine) {
        const float iq = inverse_norm(query, dim);
        for (std::int64_t i = 0; i < n; ++i) s[i] *= iq * inverse_norm(items.row(ids[i]), dim);
      }
      select_scores(s.data(), n, [&](std::int64_t i) { return ids[i]; }, top);
      top.write(out.ids + q * k, out.scores + q * k);
    }
  });
}

}  // namespace semrec
