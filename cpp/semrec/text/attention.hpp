// Self-attention of one sequence, every head, on the calling thread: semrec's own loops instead
// of a scaled_dot_product_attention call, whose fixed cost (~0.18 ms on AVX2) is many times the
// arithmetic of a 30-token text; on 226-token texts these loops also took 20-30% less time than
// SDPA (Zen 3, benchmarks/README.md).
#pragma once

#include <cstdint>
#include <vector>

namespace semrec::text {

// The head width these loops are compiled for (MiniLM: 32 x 12 heads); other widths keep SDPA.
constexpr std::int64_t kHeadDim = 32;

// qkv: (len x 3 * heads * head_dim) float32 rows [q | k | v], heads side by side in each;
// out: (len x heads * head_dim) rows, softmax(q k^T / sqrt(head_dim)) v per head. scratch is
// reused between calls on the same thread.
void attend(const float* qkv, std::int64_t len, std::int64_t heads, std::int64_t head_dim,
            float* out, std::vector<float>& scratch);

}  // namespace semrec::text
