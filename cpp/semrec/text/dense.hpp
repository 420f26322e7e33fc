// Dense (fully connected) layers of the encoder. With oneDNN the weight is reordered once into
// the blocked layout its GEMM kernel wants (AMX / AVX-512 BF16 on recent x86), and the bias, the
// GELU and the residual add run inside the GEMM's epilogue instead of as separate passes over
// the activations. Without oneDNN it falls back to at::linear + separate ops, same maths.
// Includes ATen: only for .cpp files inside cpp/semrec/text/.
#pragma once

#include <ATen/ATen.h>

namespace semrec::text {

enum class Epilogue { none, gelu };

class Dense {
 public:
  Dense() = default;
  // weight (out x in) and bias (out) already in the compute dtype.
  Dense(at::Tensor weight, at::Tensor bias, bool use_onednn);

  // act(x W^T + b), plus residual when given (added before nothing else: post-LayerNorm BERT).
  at::Tensor operator()(const at::Tensor& x, Epilogue act = Epilogue::none,
                        const at::Tensor* residual = nullptr) const;

 private:
  at::Tensor weight_, bias_, packed_;
};

// True when oneDNN can run this dtype natively (bf16 needs AVX-512 BF16 or AMX).
bool onednn_usable(at::ScalarType dtype);

}  // namespace semrec::text
