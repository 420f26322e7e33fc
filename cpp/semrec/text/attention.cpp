#include "semrec/text/attention.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace semrec::text {

namespace {

// Built for baseline x86-64 like the rest of the library; an AVX2+FMA clone is picked at load
// time where the CPU has it.
#define SEMREC_ATTENTION_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))

// Eight floats as one value: GCC keeps such locals in registers (AVX2 ymm in the x86-64-v3
// clone, SSE pairs in the default one), where float arrays indexed in loops were kept on the
// stack, every multiply-add then waiting on a store and a load. Unaligned8 reads and writes
// them at any float address.
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Unaligned8 __attribute__((vector_size(32), aligned(4), may_alias));

#define SEMREC_LOAD8(p) (*reinterpret_cast<const Unaligned8*>(p))
#define SEMREC_STORE8(p, v) (*reinterpret_cast<Unaligned8*>(p) = (v))

// Score tiles: kQueries queries by kKeys keys, accumulated in 8 vector registers over the
// head's d (both FMA pipes busy through the FMA latency; 6 loads per 8 multiply-adds).
constexpr std::int64_t kQueries = 4, kKeys = 16;

// Where one sequence's heads are laid out for the loops below (offsets into the scratch):
// q[head][row][c] scaled by 1/sqrt(d) (rows rounded up to kQueries, zeros past len),
// kt[head][c][key] (keys rounded up to kKeys, zeros past len), v[head][key][c], and the
// scores s[head][row][key].
struct Layout {
  std::int64_t len, heads, d, rows, stride;
  std::int64_t q, kt, v, scores, total;
  Layout(std::int64_t len_, std::int64_t heads_, std::int64_t d_)
      : len(len_), heads(heads_), d(d_) {
    rows = (len + kQueries - 1) / kQueries * kQueries;
    stride = (len + kKeys - 1) / kKeys * kKeys;
    q = 0;
    kt = q + heads * rows * d;
    v = kt + heads * d * stride;
    scores = v + heads * len * d;
    total = scores + heads * len * stride;
  }
};

// One pass over the sequence's rows of [q | k | v] in order (the hardware prefetcher follows
// it; reading a head's 32 columns row after row instead missed the cache on every row).
SEMREC_ATTENTION_CLONE void split_heads(const float* qkv, const Layout& L, float* scratch) {
  const std::int64_t h = L.heads * L.d, ld = 3 * h;
  const float scale = 1.0f / std::sqrt(static_cast<float>(L.d));
  float *q = scratch + L.q, *kt = scratch + L.kt, *v = scratch + L.v;
  for (std::int64_t j = 0; j < L.len; ++j) {
    const float* row = qkv + j * ld;
    for (std::int64_t head = 0; head < L.heads; ++head) {
      const float *rq = row + head * L.d, *rk = row + h + head * L.d;
      const float* rv = row + 2 * h + head * L.d;
      float* qo = q + (head * L.rows + j) * L.d;
#pragma omp simd
      for (std::int64_t c = 0; c < L.d; ++c) qo[c] = rq[c] * scale;
      float* ko = kt + head * L.d * L.stride + j;
      for (std::int64_t c = 0; c < L.d; ++c) ko[c * L.stride] = rk[c];
      std::copy(rv, rv + L.d, v + (head * L.len + j) * L.d);
    }
  }
  for (std::int64_t head = 0; head < L.heads; ++head) {
    std::fill(q + (head * L.rows + L.len) * L.d, q + (head + 1) * L.rows * L.d, 0.0f);
    for (std::int64_t c = 0; c < L.d; ++c) {
      float* ko = kt + (head * L.d + c) * L.stride;
      std::fill(ko + L.len, ko + L.stride, 0.0f);
    }
  }
}

// Scores of every head, s[head][i][j] = (q_i . k_j) / sqrt(d) - max_j; each score sums its d
// products in order.
SEMREC_ATTENTION_CLONE void shifted_scores(const Layout& L, float* scratch) {
  const std::int64_t d = L.d, stride = L.stride;
  for (std::int64_t head = 0; head < L.heads; ++head) {
    const float* q = scratch + L.q + head * L.rows * d;
    const float* kt = scratch + L.kt + head * d * stride;
    float* scores = scratch + L.scores + head * L.len * stride;
    for (std::int64_t i0 = 0; i0 < L.len; i0 += kQueries) {
      const float* qs = q + i0 * d;
      for (std::int64_t j0 = 0; j0 < stride; j0 += kKeys) {
        Vec8 a00{}, a01{}, a10{}, a11{}, a20{}, a21{}, a30{}, a31{};
        for (std::int64_t c = 0; c < d; ++c) {
          const Vec8 k0 = SEMREC_LOAD8(kt + c * stride + j0);
          const Vec8 k1 = SEMREC_LOAD8(kt + c * stride + j0 + 8);
          const float q0 = qs[c], q1 = qs[d + c], q2 = qs[2 * d + c], q3 = qs[3 * d + c];
          a00 += q0 * k0, a01 += q0 * k1, a10 += q1 * k0, a11 += q1 * k1;
          a20 += q2 * k0, a21 += q2 * k1, a30 += q3 * k0, a31 += q3 * k1;
        }
        const Vec8 tile[kQueries][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
        for (std::int64_t r = 0; r < kQueries && i0 + r < L.len; ++r) {
          float* row = scores + (i0 + r) * stride + j0;
          SEMREC_STORE8(row, tile[r][0]);
          SEMREC_STORE8(row + 8, tile[r][1]);
        }
      }
    }
    for (std::int64_t i = 0; i < L.len; ++i) {
      float* s = scores + i * stride;
      float mx = s[0];
#pragma omp simd reduction(max : mx)
      for (std::int64_t j = 1; j < L.len; ++j) mx = std::max(mx, s[j]);
#pragma omp simd
      for (std::int64_t j = 0; j < stride; ++j) s[j] -= mx;
    }
  }
}

// out_i = sum_j p_ij v_j / sum_j p_ij per head (d = 32), from the exponentiated scores p. Two
// queries at a time share each value row: their 2 x 32 outputs accumulate in 8 vector
// registers over the keys; each p row's sum is a separate pass, off their dependency chains.
SEMREC_ATTENTION_CLONE void weighted_values(const Layout& L, const float* scratch, float* out) {
  constexpr std::int64_t D = kHeadDim;
  const std::int64_t h = L.heads * D;
  for (std::int64_t head = 0; head < L.heads; ++head) {
    const float* values = scratch + L.v + head * L.len * D;
    for (std::int64_t i0 = 0; i0 < L.len; i0 += 2) {
      const bool pair = i0 + 1 < L.len;
      const float* p0 = scratch + L.scores + (head * L.len + i0) * L.stride;
      const float* p1 = pair ? p0 + L.stride : p0;  // a lone last row is computed twice
      Vec8 o00{}, o01{}, o02{}, o03{}, o10{}, o11{}, o12{}, o13{};
      for (std::int64_t j = 0; j < L.len; ++j) {
        const float* v = values + j * D;
        const Vec8 v0 = SEMREC_LOAD8(v), v1 = SEMREC_LOAD8(v + 8);
        const Vec8 v2 = SEMREC_LOAD8(v + 16), v3 = SEMREC_LOAD8(v + 24);
        const float a0 = p0[j], a1 = p1[j];
        o00 += a0 * v0, o01 += a0 * v1, o02 += a0 * v2, o03 += a0 * v3;
        o10 += a1 * v0, o11 += a1 * v1, o12 += a1 * v2, o13 += a1 * v3;
      }
      float total0 = 0.0f, total1 = 0.0f;
#pragma omp simd reduction(+ : total0, total1)
      for (std::int64_t j = 0; j < L.len; ++j) {
        total0 += p0[j];
        total1 += p1[j];
      }
      float* o = out + i0 * h + head * D;
      const float inverse0 = 1.0f / total0, inverse1 = 1.0f / total1;
      SEMREC_STORE8(o, o00 * inverse0), SEMREC_STORE8(o + 8, o01 * inverse0);
      SEMREC_STORE8(o + 16, o02 * inverse0), SEMREC_STORE8(o + 24, o03 * inverse0);
      if (pair) {
        SEMREC_STORE8(o + h, o10 * inverse1), SEMREC_STORE8(o + h + 8, o11 * inverse1);
        SEMREC_STORE8(o + h + 16, o12 * inverse1), SEMREC_STORE8(o + h + 24, o13 * inverse1);
      }
    }
  }
}

}  // namespace

void attend_short(const float* qkv, std::int64_t len, std::int64_t heads, std::int64_t head_dim,
                  float* out, std::vector<float>& scratch) {
  const Layout layout(len, heads, head_dim);
  scratch.resize(static_cast<std::size_t>(layout.total));
  split_heads(qkv, layout, scratch.data());
  shifted_scores(layout, scratch.data());
  // ATen's vectorised exp over all heads at once (one call per sequence).
  at::Tensor flat =
      at::from_blob(scratch.data() + layout.scores, {layout.total - layout.scores}, at::kFloat);
  at::exp_(flat);
  weighted_values(layout, scratch.data(), out);
}

}  // namespace semrec::text
