#include "semrec/text/attention.hpp"

#include <algorithm>
#include <cmath>

#include "semrec/text/vec8.hpp"

namespace semrec::text {

namespace {

// Built for baseline x86-64 like the rest of the library; an AVX2+FMA clone is picked at load
// time where the CPU has it.
#define SEMREC_ATTENTION_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))

// Score tiles: kQueries queries by kKeys keys, accumulated in 12 vector registers over the
// head's d (8 loads per 12 multiply-adds; with 8 registers and 4 queries, the FMA latency left
// the pipes idle: attention on 226-token texts took 8% longer).
constexpr std::int64_t kQueries = 6, kKeys = 16;

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
      float *qo = q + (head * L.rows + j) * L.d, *vo = v + (head * L.len + j) * L.d;
      // One loop for both (a std::copy of V's 32 floats was a memmove call per head and row).
#pragma omp simd
      for (std::int64_t c = 0; c < L.d; ++c) qo[c] = rq[c] * scale, vo[c] = rv[c];
      float* ko = kt + head * L.d * L.stride + j;
      for (std::int64_t c = 0; c < L.d; ++c) ko[c * L.stride] = rk[c];
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
  const Int32x8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  const Vec8 below = Vec8{} - __builtin_inff();
  // Each row's running maximum, taken from the tiles while they are in registers (a separate
  // pass over the stored scores cost 8% of the attention time on 226-token texts).
  Vec8 highest[kQueries];
  for (Vec8& h : highest) h = below;
  for (std::int64_t j0 = 0; j0 < stride; j0 += kKeys) {
    Vec8 a00{}, a01{}, a10{}, a11{}, a20{}, a21{}, a30{}, a31{}, a40{}, a41{}, a50{}, a51{};
    for (std::int64_t c = 0; c < d; ++c) {
      const Vec8 k0 = SEMREC_LOAD8(kt + c * stride + j0);
      const Vec8 k1 = SEMREC_LOAD8(kt + c * stride + j0 + 8);
      const float q0 = q[c], q1 = q[d + c], q2 = q[2 * d + c], q3 = q[3 * d + c];
      const float q4 = q[4 * d + c], q5 = q[5 * d + c];
      a00 += q0 * k0, a01 += q0 * k1, a10 += q1 * k0, a11 += q1 * k1;
      a20 += q2 * k0, a21 += q2 * k1, a30 += q3 * k0, a31 += q3 * k1;
      a40 += q4 * k0, a41 += q4 * k1, a50 += q5 * k0, a51 += q5 * k1;
    }
    const Vec8 tile[kQueries][2] = {{a00, a01}, {a10, a11}, {a20, a21},
                                    {a30, a31}, {a40, a41}, {a50, a51}};
    const bool tail = j0 + kKeys > L.len;  // padding keys' scores (0) must not count
    const Int32x8 keys0 = lane + static_cast<std::int32_t>(j0 - L.len) < 0;
    const Int32x8 keys1 = lane + static_cast<std::int32_t>(j0 + 8 - L.len) < 0;
    for (std::int64_t r = 0; r < kQueries; ++r) {
      SEMREC_STORE8(p + r * stride + j0, tile[r][0]);
      SEMREC_STORE8(p + r * stride + j0 + 8, tile[r][1]);
      Vec8 s0 = tile[r][0], s1 = tile[r][1];
      if (tail) s0 = keys0 ? s0 : below, s1 = keys1 ? s1 : below;
      const Vec8 m = s0 < s1 ? s1 : s0;
      highest[r] = highest[r] < m ? m : highest[r];
    }
  }
  for (std::int64_t r = 0; r < kQueries; ++r) {
    float* s = p + r * stride;
    float mx = highest[r][0];
    for (int k = 1; k < 8; ++k) mx = std::max(mx, highest[r][k]);
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

// out_i = sum_j p_ij v_j / sum_j p_ij for the block's kQueries rows (d = 32), in two halves of
// 16 columns: 6 x 16 outputs accumulate in 12 vector registers over the keys, sharing each
// half value row (2 rows x 32 columns in 8 registers took 4% longer on 226-token texts).
// Padding rows past count are computed and dropped.
[[gnu::always_inline]] inline void block_values(const Layout& L, const float* values,
                                                const float* p, const float* totals,
                                                std::int64_t count, float* out) {
  constexpr std::int64_t D = kHeadDim;
  static_assert(kQueries == 6 && D % 16 == 0, "the loop below holds 6 rows x 16 columns");
  const std::int64_t h = L.heads * D, stride = L.stride;
  const float *p0 = p, *p1 = p + stride, *p2 = p + 2 * stride, *p3 = p + 3 * stride;
  const float *p4 = p + 4 * stride, *p5 = p + 5 * stride;
  for (std::int64_t half = 0; half < D; half += 16) {
    Vec8 o00{}, o01{}, o10{}, o11{}, o20{}, o21{}, o30{}, o31{}, o40{}, o41{}, o50{}, o51{};
    for (std::int64_t j = 0; j < L.len; ++j) {
      const float* v = values + j * D + half;
      // Volatile reads: each value vector is loaded once, into a register every row uses.
      // Left to itself, GCC folded the load into each row's multiply-add instead (more loads
      // than the load ports take).
      const Vec8 v0 = SEMREC_VOLATILE_LOAD8(v), v1 = SEMREC_VOLATILE_LOAD8(v + 8);
      const float a0 = p0[j], a1 = p1[j], a2 = p2[j], a3 = p3[j], a4 = p4[j], a5 = p5[j];
      o00 += a0 * v0, o01 += a0 * v1, o10 += a1 * v0, o11 += a1 * v1;
      o20 += a2 * v0, o21 += a2 * v1, o30 += a3 * v0, o31 += a3 * v1;
      o40 += a4 * v0, o41 += a4 * v1, o50 += a5 * v0, o51 += a5 * v1;
    }
    const Vec8 rows[kQueries][2] = {{o00, o01}, {o10, o11}, {o20, o21},
                                    {o30, o31}, {o40, o41}, {o50, o51}};
    for (std::int64_t r = 0; r < count; ++r) {
      float* o = out + r * h + half;
      const float inverse = 1.0f / totals[r];
      SEMREC_STORE8(o, rows[r][0] * inverse);
      SEMREC_STORE8(o + 8, rows[r][1] * inverse);
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
