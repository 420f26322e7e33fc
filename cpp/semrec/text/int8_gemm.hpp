// The int8 matrix product of the encoder's dense layers: uint8 activations times an int8
// weight, exact int32 sums, through FBGEMM's packed GEMM (the library torch's x86 wheels ship
// and export). Called on row blocks that stay in cache, one block per thread, so the caller
// can quantise a block, multiply it and dequantise it before moving on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace semrec::text {

class Int8Gemm {
 public:
  Int8Gemm() = default;
  // weight: (out x in) int8, row-major; packed once here.
  Int8Gemm(const std::int8_t* weight, std::int64_t out, std::int64_t in);

  // c (rows x out) = a (rows x in, uint8, row-major) times weight^T, on the calling thread.
  void multiply(const std::uint8_t* a, std::int64_t rows, std::int32_t* c) const;

  std::int64_t in() const { return in_; }
  std::int64_t out() const { return out_; }
  explicit operator bool() const { return packed_ != nullptr; }

 private:
  struct Packed;
  std::shared_ptr<const Packed> packed_;
  std::int64_t in_ = 0, out_ = 0;
};

// True when this build and CPU can run Int8Gemm (x86 with AVX2 or better, torch with FBGEMM).
bool int8_gemm_available();

// FBGEMM's instruction set in this process ("avx2", "avx512", "avx512_vnni", ...; it honours
// FBGEMM_ENABLE_INSTRUCTIONS), or "none".
std::string int8_kernel_isa();

}  // namespace semrec::text
