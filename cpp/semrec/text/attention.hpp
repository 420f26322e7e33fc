// Self-attention of one short sequence, every head, on the calling thread: small loops
// instead of a scaled_dot_product_attention call, whose fixed cost (~0.18 ms on AVX2) is many
// times the arithmetic of a 30-token text. Includes ATen: only for .cpp files inside
// cpp/semrec/text/.
#pragma once

#include <cstdint>
#include <vector>

namespace semrec::text {

// Sequences up to this many tokens take attend_short; longer ones keep SDPA (its blocked
// kernel wins once the score matrices outgrow the fixed cost).
constexpr std::int64_t kShortAttention = 128;
// The head width these loops are compiled for (MiniLM, BERT-base: 32 and 64 x 12 heads...);
// other widths keep SDPA.
constexpr std::int64_t kHeadDim = 32;

// qkv: (len x 3 * heads * head_dim) float32 rows [q | k | v], heads side by side in each;
// out: (len x heads * head_dim) rows, softmax(q k^T / sqrt(head_dim)) v per head. scratch is
// reused between calls on the same thread.
void attend_short(const float* qkv, std::int64_t len, std::int64_t heads, std::int64_t head_dim,
                  float* out, std::vector<float>& scratch);

}  // namespace semrec::text
