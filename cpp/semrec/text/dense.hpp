// Dense (fully connected) layers of the encoder, in one of three kernels:
// - oneDNN (fp32, bf16): the weight is reordered once into the blocked layout its GEMM kernel
//   wants (AMX / AVX-512 BF16 in bf16), and the bias, the GELU and the residual add run inside
//   the GEMM's epilogue instead of as separate passes over the activations;
// - FBGEMM int8: dynamic quantisation. Weights int8 with one scale per output channel,
//   activations quantised per call to uint8 with one scale and offset per row (token),
//   int32 accumulation (AVX-512 VNNI or AVX2), in blocks of rows that stay in cache (quantise,
//   multiply, dequantise with bias, outlier channels, GELU or residual, per block);
// - plain at::linear + separate ops where oneDNN is missing; same maths.
// Includes ATen: only for .cpp files inside cpp/semrec/text/.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "semrec/text/int8_gemm.hpp"

namespace semrec::text {

enum class Epilogue { none, gelu };

// How int8 stays clear of the 16-bit saturation of CPUs without VNNI: their u8 x s8
// multiply-add sums two products in 16 bits (at most 32767).
enum class Int8Range {
  full,                   // 8-bit activations and weights (VNNI: no 16-bit sums)
  seven_bit_weights,      // weights in [-64, 64]: 2 x 255 x 64 = 32640
  seven_bit_activations,  // activations in [0, 127]: 2 x 127 x 127 = 32258
};
enum class DenseKernel { aten, onednn, int8 };

// A layer's result already quantised for the int8 layer that reads it next, as that layer would
// quantise it: uint8 codes of the int8 channels (rows x channels), each row's lo and step, and
// the float32 tail channels. The float32 result itself is never written (for the FFN, 1536
// floats per token: more memory traffic on long texts than the int8 codes that replace it).
struct QuantizedRows {
  std::int64_t rows = 0;  // the tensors hold at least this many (reused across calls)
  at::Tensor codes;       // uint8 (rows x int8 channels)
  at::Tensor lo, step;    // float32 (rows)
  at::Tensor tail;        // float32 (rows x tail channels)
};

class Dense {
 public:
  Dense() = default;
  // weight (out x in) and bias (out): float32 for int8, else already in the compute dtype.
  // range (int8 only): see Int8Range. fp32_tail (int8 only): the last fp32_tail input channels
  // are computed in float32 (activation outliers, which would otherwise set every row's
  // quantisation step) and left out of the rows' int8 ranges.
  Dense(at::Tensor weight, at::Tensor bias, DenseKernel kernel, Int8Range range = Int8Range::full,
        std::int64_t fp32_tail = 0);

  // act(x W^T + b), plus residual when given (added before nothing else: post-LayerNorm BERT).
  // recycled (int8 only; optional): a result of an earlier call that is no longer read. Its
  // memory holds this result when large enough, else it is set to the newly allocated result,
  // so that a forward pass's layers share one buffer: a fresh allocation of tens of MB (an
  // mmap) costs a page fault per 4 KB on first write, ~10% of the int8 time on long texts.
  at::Tensor operator()(const at::Tensor& x, Epilogue act = Epilogue::none,
                        const at::Tensor* residual = nullptr, at::Tensor* recycled = nullptr) const;

  // int8 layers only: act(x W^T + b) quantised for `next` (an int8 layer taking this one's
  // outputs), into `into` (its tensors reused when large enough). The same codes as `next`
  // computes from operator()'s float32 result, bit for bit.
  void quantized_for(const Dense& next, const at::Tensor& x, Epilogue act,
                     QuantizedRows& into) const;
  // int8 layers only: the layer applied to rows quantised for it by quantized_for.
  at::Tensor operator()(const QuantizedRows& x, const at::Tensor* residual,
                        at::Tensor* recycled) const;

  bool is_int8() const { return static_cast<bool>(int8_); }

 private:
  struct Int8Input;
  struct Int8Output;
  void int8_blocks(std::int64_t n, const Int8Input& input, const Int8Output& output) const;
  at::Tensor int8_forward(const at::Tensor& x, Epilogue act, const at::Tensor* residual,
                          at::Tensor* recycled) const;

  at::Tensor weight_, bias_, packed_;
  Int8Gemm int8_;
  at::Tensor weight_scales_;  // int8: the weight's per-output-channel scales
  at::Tensor weight_sums_;    // int8: row sums of the dequantised weight
  at::Tensor tail_weight_;    // int8: the float32 tail's weight, (fp32_tail x out)
  std::int64_t tail_ = 0;
  float activation_levels_ = 255.0f;  // int8: activations take 0..levels
};

// True when oneDNN can run this dtype natively (bf16 needs AVX-512 BF16 or AMX).
bool onednn_usable(at::ScalarType dtype);

}  // namespace semrec::text
