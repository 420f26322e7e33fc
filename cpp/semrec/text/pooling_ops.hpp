// The tensor-level pooling both the pointer API (pooling.cpp) and the encoder (bert.cpp) use.
// Includes ATen: only for .cpp files inside cpp/semrec/text/, never for the bindings.
#pragma once

#include <ATen/ATen.h>

namespace semrec::text {

// Mean of hidden[i, :lengths[i], :] for hidden (n, len, dim) float32 and lengths (n,) int64;
// a length of 0 gives a zero vector.
at::Tensor masked_mean(const at::Tensor& hidden, const at::Tensor& lengths);

// Each row divided by its L2 norm (rows of norm below 1e-12 are divided by 1e-12).
at::Tensor l2_normalize(const at::Tensor& rows);

}  // namespace semrec::text
