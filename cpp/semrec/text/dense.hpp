// Dense (fully connected) layers of the encoder, in one of three kernels:
// - oneDNN (fp32, bf16): the weight is reordered once into the blocked layout its GEMM kernel
//   wants (AMX / AVX-512 BF16 in bf16), and the bias, the GELU and the residual add run inside
//   the GEMM's epilogue instead of as separate passes over the activations;
// - FBGEMM int8: dynamic quantisation. Weights int8 with one scale per output channel,
//   activations quantised per call to uint8 with one scale and offset per row (token),
//   int32 accumulation (AVX-512 VNNI or AVX2);
// - plain at::linear + separate ops where oneDNN is missing; same maths.
// Includes ATen: only for .cpp files inside cpp/semrec/text/.
#pragma once

#include <ATen/ATen.h>
#include <ATen/native/quantized/PackedParams.h>

#include <string>

namespace semrec::text {

enum class Epilogue { none, gelu };
enum class DenseKernel { aten, onednn, int8 };

class Dense {
 public:
  Dense() = default;
  // weight (out x in) and bias (out): float32 for int8, else already in the compute dtype.
  // seven_bit_weights (int8 only) quantises weights to [-64, 64], which CPUs without VNNI need
  // (their 8-bit multiply-add saturates 16-bit sums).
  Dense(at::Tensor weight, at::Tensor bias, DenseKernel kernel, bool seven_bit_weights = false);

  // act(x W^T + b), plus residual when given (added before nothing else: post-LayerNorm BERT).
  at::Tensor operator()(const at::Tensor& x, Epilogue act = Epilogue::none,
                        const at::Tensor* residual = nullptr) const;

 private:
  at::Tensor weight_, bias_, packed_;
  c10::intrusive_ptr<LinearPackedParamsBase> int8_;
  at::Tensor weight_sums_;  // int8: row sums of the dequantised weight
};

// True when oneDNN can run this dtype natively (bf16 needs AVX-512 BF16 or AMX).
bool onednn_usable(at::ScalarType dtype);

// FBGEMM's instruction set in this process ("avx2", "avx512", "avx512_vnni", ...; it honours
// FBGEMM_ENABLE_INSTRUCTIONS), or "none" when torch was built without FBGEMM.
std::string int8_kernel_isa();

}  // namespace semrec::text
