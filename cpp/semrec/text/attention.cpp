#include "semrec/text/attention.hpp"

#include <algorithm>
#include <cmath>

#include "semrec/text/vec8.hpp"

namespace semrec::text {

namespace {

// Built for baseline x86-64 like the rest of the library; an AVX2+FMA clone is picked at load
// time where the CPU has it.
#define SEMREC_ATTENTION_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))

// Score tiles: kQueries queries by kKeys keys, accumulated in 8 vector registers over the
// head's d (both FMA pipes busy through the FMA latency; 6 loads per 8 multiply-adds).
constexpr std::int64_t kQueries = 4, kKeys = 16;

// Where one sequence's heads are laid out for the loops below (offsets into the scratch):
// q[head][row][c] scaled by 1/sqrt(d) (rows rounded up to kQueries, zeros past len),
// kt[head][c][key] (keys rounded up to kKeys, zeros past len), v[head][key][c], and the
// probabilities of one block of kQueries rows, p[row][key]: a head's K^T and V stay in L2 and
// the block in L1, where a whole (heads x len x len) score matrix outgrew L2 on long texts.
struct Layout {
  std::int64_t len, heads, d, rows, stride;
  std::int64_t q, kt, v, p, total;
  Layout(std::int64_t len_, std::int64_t heads_, std::int64_t d_)
      : len(len_), heads(heads_), d(d_) {
    rows = (len + kQueries - 1) / kQueries * kQueries;
    stride = (len + kKeys - 1) / kKeys * kKeys;
    q = 0;
    kt = q + heads * rows * d;
    v = kt + heads * d * stride;
    p = v + heads * len * d;
    total = p + kQueries * stride;
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

// e^x for x <= 0 (scores less their row's maximum), 8 at a time: x = n ln2 + r with
// |r| <= ln2 / 2, e^r by its Taylor polynomial to r^6 (relative error < 3e-7: a few float
// roundings), times 2^n built in the exponent bits. Below -87 (e^-87 ~ 1.6e-38, the smallest
// normal floats) x is clamped: such a term is nothing beside the row maximum's e^0 = 1. Inline,
// where ATen's exp was one call per sequence over a score matrix that outgrew L2.
// (In place: a 32-byte vector passed or returned by value changes the baseline build's ABI.)
[[gnu::always_inline]] inline void exp_nonpositive(Vec8& x) {
  const Vec8 lowest = Vec8{} - 87.0f;
  x = x < lowest ? lowest : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const Vec8 shifted = x * 1.44269504088896341f + kRound;
  const Vec8 n = shifted - kRound;
  const Vec8 r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // ln2 in two parts
  Vec8 e = r * (1.0f / 720) + 1.0f / 120;
  e = e * r + 1.0f / 24;
  e = e * r + 1.0f / 6;
  e = e * r + 0.5f;
  e = e * r + 1.0f;
  e = e * r + 1.0f;
  // shifted's low mantissa bits hold n (two's complement); n + 127 in the exponent field is 2^n
  const Int32x8 bits = (__builtin_bit_cast(Int32x8, shifted) - 0x4b400000 + 127) << 23;
  x = e * __builtin_bit_cast(Vec8, bits);
}

// Rows i0 .. i0 + kQueries - 1 of one head: p[r][j] = e^(s_rj - max_j s_rj) with
// s_rj = q_r . k_j / sqrt(d) (each summing its d products in order), zeros past len, and
// totals[r] = sum_j p[r][j].
[[gnu::always_inline]] inline void block_probabilities(const Layout& L, const float* q,
                                                       const float* kt, float* p, float* totals) {
  const std::int64_t d = L.d, stride = L.stride;
  for (std::int64_t j0 = 0; j0 < stride; j0 += kKeys) {
    Vec8 a00{}, a01{}, a10{}, a11{}, a20{}, a21{}, a30{}, a31{};
    for (std::int64_t c = 0; c < d; ++c) {
      const Vec8 k0 = SEMREC_LOAD8(kt + c * stride + j0);
      const Vec8 k1 = SEMREC_LOAD8(kt + c * stride + j0 + 8);
      const float q0 = q[c], q1 = q[d + c], q2 = q[2 * d + c], q3 = q[3 * d + c];
      a00 += q0 * k0, a01 += q0 * k1, a10 += q1 * k0, a11 += q1 * k1;
      a20 += q2 * k0, a21 += q2 * k1, a30 += q3 * k0, a31 += q3 * k1;
    }
    const Vec8 tile[kQueries][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
    for (std::int64_t r = 0; r < kQueries; ++r) {
      SEMREC_STORE8(p + r * stride + j0, tile[r][0]);
      SEMREC_STORE8(p + r * stride + j0 + 8, tile[r][1]);
    }
  }
  const Int32x8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  for (std::int64_t r = 0; r < kQueries; ++r) {
    float* s = p + r * stride;
    // (A scalar maximum, a chain of 3-cycle dependencies, took longer than the row's products.)
    float least, mx;
    min_max(s, L.len, least, mx);
    Vec8 sum{};
    for (std::int64_t j = 0; j < stride; j += 8) {
      Vec8 e = SEMREC_LOAD8(s + j) - mx;
      exp_nonpositive(e);
      e = lane + static_cast<std::int32_t>(j - L.len) < 0 ? e : Vec8{};  // padding keys: 0
      SEMREC_STORE8(s + j, e);
      sum += e;
    }
    totals[r] = ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
  }
}

// out_i = sum_j p_ij v_j / sum_j p_ij for two rows of the block at a time (d = 32): their
// 2 x 32 outputs accumulate in 8 vector registers over the keys, sharing each value row.
[[gnu::always_inline]] inline void block_values(const Layout& L, const float* values,
                                                const float* p, const float* totals,
                                                std::int64_t count, float* out) {
  constexpr std::int64_t D = kHeadDim;
  const std::int64_t h = L.heads * D;
  for (std::int64_t r = 0; r < count; r += 2) {
    const bool pair = r + 1 < count;
    const float* p0 = p + r * L.stride;
    const float* p1 = p0 + L.stride;  // past count: a padding row, computed and dropped
    Vec8 o00{}, o01{}, o02{}, o03{}, o10{}, o11{}, o12{}, o13{};
    for (std::int64_t j = 0; j < L.len; ++j) {
      const float* v = values + j * D;
      // Volatile reads: each value vector is loaded once, into a register both rows use.
      // Left to itself, GCC folded the load into both rows' multiply-adds instead (10 loads
      // per 8 multiply-adds, more than the load ports take).
      const Vec8 v0 = SEMREC_VOLATILE_LOAD8(v), v1 = SEMREC_VOLATILE_LOAD8(v + 8);
      const Vec8 v2 = SEMREC_VOLATILE_LOAD8(v + 16), v3 = SEMREC_VOLATILE_LOAD8(v + 24);
      const float a0 = p0[j], a1 = p1[j];
      o00 += a0 * v0, o01 += a0 * v1, o02 += a0 * v2, o03 += a0 * v3;
      o10 += a1 * v0, o11 += a1 * v1, o12 += a1 * v2, o13 += a1 * v3;
    }
    float* o = out + r * h;
    const float inverse0 = 1.0f / totals[r];
    SEMREC_STORE8(o, o00 * inverse0), SEMREC_STORE8(o + 8, o01 * inverse0);
    SEMREC_STORE8(o + 16, o02 * inverse0), SEMREC_STORE8(o + 24, o03 * inverse0);
    if (pair) {
      const float inverse1 = 1.0f / totals[r + 1];
      SEMREC_STORE8(o + h, o10 * inverse1), SEMREC_STORE8(o + h + 8, o11 * inverse1);
      SEMREC_STORE8(o + h + 16, o12 * inverse1), SEMREC_STORE8(o + h + 24, o13 * inverse1);
    }
  }
}

// Every head, a block of kQueries rows at a time: the block's probabilities, then its outputs.
SEMREC_ATTENTION_CLONE void attend_heads(const Layout& L, float* scratch, float* out) {
  const std::int64_t d = L.d, h = L.heads * d;
  for (std::int64_t head = 0; head < L.heads; ++head) {
    const float* q = scratch + L.q + head * L.rows * d;
    const float* kt = scratch + L.kt + head * d * L.stride;
    const float* values = scratch + L.v + head * L.len * d;
    for (std::int64_t i0 = 0; i0 < L.len; i0 += kQueries) {
      float totals[kQueries];
      block_probabilities(L, q + i0 * d, kt, scratch + L.p, totals);
      block_values(L, values, scratch + L.p, totals, std::min(kQueries, L.len - i0),
                   out + i0 * h + head * d);
    }
  }
}

}  // namespace

void attend(const float* qkv, std::int64_t len, std::int64_t heads, std::int64_t head_dim,
            float* out, std::vector<float>& scratch) {
  const Layout layout(len, heads, head_dim);
  scratch.resize(static_cast<std::size_t>(layout.total));
  split_heads(qkv, layout, scratch.data());
  attend_heads(layout, scratch.data(), out);
}

}  // namespace semrec::text
