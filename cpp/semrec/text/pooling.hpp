// Sentence pooling over a transformer's token states, computed with LibTorch. The interface is
// plain pointers so that code including it never needs the torch headers.
#pragma once

#include <cstdint>

namespace semrec::text {

// out[i] = mean of hidden[i, :lengths[i], :] (a length of 0 gives a zero vector), then L2
// normalised when `normalize` is set. hidden is (n, seq_len, dim) row-major float32; out is
// (n, dim). Lengths must lie in [0, seq_len].
void mean_pool(const float* hidden, std::int64_t n, std::int64_t seq_len, std::int64_t dim,
               const std::int64_t* lengths, bool normalize, float* out);

// Number of threads LibTorch's intra-op pool uses, and a setter for it.
int torch_num_threads();
void set_torch_num_threads(int n);

}  // namespace semrec::text
