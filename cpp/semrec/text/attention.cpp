#include "semrec/text/attention.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace semrec::text {

namespace {

// Built for baseline x86-64 like the rest of the library; an AVX2+FMA clone is picked at load
// time where the CPU has it.
#define SEMREC_ATTENTION_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))

// Score tiles: kQueries queries by kKeys keys, accumulated in registers over the head's d.
constexpr std::int64_t kQueries = 4, kKeys = 8;

// Scores of every head, s[head][i][j] = (q_i . k_j) / sqrt(d) - max_j, rows of `stride`
// (len rounded up to kKeys). K is transposed per head (zeros past len) so that a tile is d
// broadcast-multiply-adds of kKeys contiguous keys; each score sums its d products in order.
SEMREC_ATTENTION_CLONE void shifted_scores(const float* qkv, std::int64_t len, std::int64_t heads,
                                           std::int64_t d, std::int64_t stride, float* scores,
                                           float* kt, float* qs) {
  const std::int64_t h = heads * d, ld = 3 * h;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (std::int64_t head = 0; head < heads; ++head) {
    for (std::int64_t j = 0; j < stride; ++j) {
      const float* k = qkv + std::min(j, len - 1) * ld + h + head * d;
      for (std::int64_t c = 0; c < d; ++c) kt[c * stride + j] = j < len ? k[c] : 0.0f;
    }
    for (std::int64_t i0 = 0; i0 < len; i0 += kQueries) {
      // The tile's queries, scaled (rows past len repeat the last one; their scores are
      // dropped).
      for (std::int64_t r = 0; r < kQueries; ++r) {
        const float* q = qkv + std::min(i0 + r, len - 1) * ld + head * d;
        for (std::int64_t c = 0; c < d; ++c) qs[r * d + c] = q[c] * scale;
      }
      for (std::int64_t j0 = 0; j0 < stride; j0 += kKeys) {
        float acc[kQueries][kKeys] = {};
        for (std::int64_t c = 0; c < d; ++c) {
          const float* kc = kt + c * stride + j0;
          for (std::int64_t r = 0; r < kQueries; ++r) {
            const float qv = qs[r * d + c];
#pragma omp simd
            for (std::int64_t l = 0; l < kKeys; ++l) acc[r][l] += qv * kc[l];
          }
        }
        for (std::int64_t r = 0; r < kQueries && i0 + r < len; ++r) {
          std::copy(acc[r], acc[r] + kKeys, scores + (head * len + i0 + r) * stride + j0);
        }
      }
    }
    for (std::int64_t i = 0; i < len; ++i) {
      float* s = scores + (head * len + i) * stride;
      float mx = s[0];
      for (std::int64_t j = 1; j < len; ++j) mx = std::max(mx, s[j]);
#pragma omp simd
      for (std::int64_t j = 0; j < stride; ++j) s[j] -= mx;
    }
  }
}

// out_i = sum_j p_ij v_j / sum_j p_ij per head, from the exponentiated scores p; the head's
// D outputs accumulate in registers over the keys (D a compile-time width).
template <std::int64_t D>
SEMREC_ATTENTION_CLONE void weighted_values(const float* qkv, std::int64_t len, std::int64_t heads,
                                            std::int64_t stride, const float* probs, float* out) {
  const std::int64_t h = heads * D, ld = 3 * h;
  for (std::int64_t head = 0; head < heads; ++head) {
    for (std::int64_t i = 0; i < len; ++i) {
      const float* p = probs + (head * len + i) * stride;
      float acc[D] = {};
      float total = 0.0f;
      for (std::int64_t j = 0; j < len; ++j) {
        const float pj = p[j];
        const float* v = qkv + j * ld + 2 * h + head * D;
        total += pj;
#pragma omp simd
        for (std::int64_t c = 0; c < D; ++c) acc[c] += pj * v[c];
      }
      const float inverse = 1.0f / total;
      float* o = out + i * h + head * D;
#pragma omp simd
      for (std::int64_t c = 0; c < D; ++c) o[c] = acc[c] * inverse;
    }
  }
}

}  // namespace

void attend_short(const float* qkv, std::int64_t len, std::int64_t heads, std::int64_t head_dim,
                  float* out, std::vector<float>& scratch) {
  const std::int64_t stride = (len + kKeys - 1) / kKeys * kKeys;
  const std::int64_t score_count = heads * len * stride;
  scratch.resize(static_cast<std::size_t>(score_count + head_dim * (stride + kQueries)));
  float* scores = scratch.data();
  float* kt = scores + score_count;
  shifted_scores(qkv, len, heads, head_dim, stride, scores, kt, kt + head_dim * stride);
  // ATen's vectorised exp over all heads at once (one call per sequence).
  at::Tensor flat = at::from_blob(scores, {score_count}, at::kFloat);
  at::exp_(flat);
  weighted_values<kHeadDim>(qkv, len, heads, stride, scores, out);
}

}  // namespace semrec::text
