#include "semrec/text/int8_gemm.hpp"

#include <stdexcept>

// torch's x86 wheels ship FBGEMM's headers and export its packed-GEMM instantiations.
#if __has_include(<fbgemm/Fbgemm.h>)
#include <fbgemm/Fbgemm.h>
#define SEMREC_HAVE_FBGEMM 1
#endif

namespace semrec::text {

#if defined(SEMREC_HAVE_FBGEMM)

struct Int8Gemm::Packed {
  // The weight is (out x in) row-major, i.e. the GEMM's B (in x out) transposed.
  Packed(const std::int8_t* weight, std::int64_t out, std::int64_t in)
      : b(fbgemm::matrix_op_t::Transpose, static_cast<std::int32_t>(in),
          static_cast<std::int32_t>(out), weight, static_cast<std::int32_t>(in)) {}
  fbgemm::PackBMatrix<std::int8_t, std::int32_t> b;
};

Int8Gemm::Int8Gemm(const std::int8_t* weight, std::int64_t out, std::int64_t in)
    : in_(in), out_(out) {
  if (!int8_gemm_available()) throw std::invalid_argument("int8 needs FBGEMM on an AVX2 CPU");
  packed_ = std::make_shared<const Packed>(weight, out, in);
}

void Int8Gemm::multiply(const std::uint8_t* a, std::int64_t rows, std::int32_t* c) const {
  // No zero points (activations start at 0, weights are symmetric): plain int32 sums out.
  fbgemm::PackAMatrix<std::uint8_t, std::int32_t> pack_a(
      fbgemm::matrix_op_t::NoTranspose, static_cast<std::int32_t>(rows),
      static_cast<std::int32_t>(in_), a, static_cast<std::int32_t>(in_));
  fbgemm::DoNothing<std::int32_t, std::int32_t> done;
  fbgemm::memCopy<> copy(done);
  // Packed B is not modified by the GEMM; FBGEMM's signature just lacks the const.
  auto& b = const_cast<fbgemm::PackBMatrix<std::int8_t, std::int32_t>&>(packed_->b);
  fbgemm::fbgemmPacked(pack_a, b, c, c, static_cast<std::uint32_t>(out_), copy, 0, 1);
}

bool int8_gemm_available() { return fbgemm::fbgemmSupportedCPU(); }

std::string int8_kernel_isa() {
  if (!fbgemm::fbgemmSupportedCPU()) return "none";
  switch (fbgemm::fbgemmInstructionSet()) {
    case fbgemm::inst_set_t::avx2:
      return "avx2";
    case fbgemm::inst_set_t::avx512:
      return "avx512";
    case fbgemm::inst_set_t::avx512_ymm:
      return "avx512_ymm";
    case fbgemm::inst_set_t::avx512_vnni:
      return "avx512_vnni";
    case fbgemm::inst_set_t::avx512_vnni_ymm:
      return "avx512_vnni_ymm";
    default:
      return "none";
  }
}

#else

struct Int8Gemm::Packed {};

Int8Gemm::Int8Gemm(const std::int8_t*, std::int64_t, std::int64_t) {
  throw std::invalid_argument("int8 needs FBGEMM (x86 CPUs)");
}

void Int8Gemm::multiply(const std::uint8_t*, std::int64_t, std::int32_t*) const {
  throw std::invalid_argument("int8 needs FBGEMM (x86 CPUs)");
}

bool int8_gemm_available() { return false; }

std::string int8_kernel_isa() { return "none"; }

#endif

}  // namespace semrec::text
