#include "semrec/train/sparse.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace semrec::train {

SparseRows::SparseRows(std::vector<std::int64_t> indptr, std::vector<std::int32_t> indices,
                       std::vector<float> values, std::int64_t cols)
    : indptr_(std::move(indptr)),
      indices_(std::move(indices)),
      values_(std::move(values)),
      cols_(cols) {
  if (indptr_.empty() || indptr_.front() != 0 ||
      indptr_.back() != static_cast<std::int64_t>(indices_.size()) ||
      indices_.size() != values_.size()) {
    throw std::invalid_argument("SparseRows: indptr, indices and values disagree");
  }
}

namespace {

// The loops below are compiled for AVX-512, AVX2 and baseline x86-64 and the best one the CPU
// runs is picked once (the _text module itself is built for baseline x86-64, whose SSE2 code
// streamed these products at half the speed). SEMREC_ISA=avx2|generic caps the choice, as it
// does for semrec's other kernels.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SEMREC_DISPATCH 1
#define SEMREC_INLINE [[gnu::always_inline]] inline
#else
#define SEMREC_INLINE inline
#endif

// kWidth floats as one value (GCC vector extension), the width of the variant's registers:
// 16 (one zmm) for AVX-512, 8 (one ymm) for AVX2, 4 (one xmm) for baseline x86-64. A type
// wider than the target's registers is lowered through memory (an AVX2 build of 16-float
// values ran 9x slower than AVX-512), hence one width per variant. Unaligned loads and stores
// go through memcpy.
// (Explicit specialisations: GCC drops vector_size on an alias template.)
template <int kWidth>
struct Lanes;
template <>
struct Lanes<4> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct Lanes<8> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct Lanes<16> {
  typedef float type __attribute__((vector_size(64)));
};

// out[n] = Σ_k values[k] * x[indices[k]] over row (rows ? rows[n] : n)'s entries, in entry
// order, for n in [begin, end). 64 columns at a time are summed in register-held accumulators
// (the destination is written once, not read and written at every entry). Each output
// element is one accumulator updated in entry order, whatever the width.
template <int kWidth>
SEMREC_INLINE void rows_product_body(const std::int64_t* indptr, const std::int32_t* indices,
                                     const float* values, const std::int32_t* rows,
                                     std::int64_t begin, std::int64_t end, const float* x,
                                     std::int64_t dim, float* out) {
  using V = typename Lanes<kWidth>::type;
  static_assert(sizeof(V) == sizeof(float) * kWidth);
  constexpr std::int64_t kBlock = 64;
  constexpr int kRegs = kBlock / kWidth;
  for (std::int64_t n = begin; n < end; ++n) {
    const std::int64_t r = rows ? rows[n] : n;
    float* dst = out + n * dim;
    std::int64_t d0 = 0;
    for (; d0 + kBlock <= dim; d0 += kBlock) {
      V acc[kRegs] = {};
      for (std::int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
        const float* src = x + static_cast<std::int64_t>(indices[k]) * dim + d0;
        for (int j = 0; j < kRegs; ++j) {
          V v;
          std::memcpy(&v, src + j * kWidth, sizeof v);
          acc[j] += values[k] * v;
        }
      }
      std::memcpy(dst + d0, acc, sizeof acc);
    }
    if (d0 == dim) continue;
    std::fill(dst + d0, dst + dim, 0.0f);
    for (std::int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
      const float w = values[k];
      const float* src = x + static_cast<std::int64_t>(indices[k]) * dim;
      for (std::int64_t d = d0; d < dim; ++d) dst[d] += w * src[d];
    }
  }
}

// out[indices[k], lo:hi] += values[k] * y[n, lo:hi] over the listed rows' entries, in order.
SEMREC_INLINE void transposed_slice_body(const std::int64_t* indptr, const std::int32_t* indices,
                                         const float* values, const std::int32_t* rows,
                                         std::int64_t count, const float* y, std::int64_t dim,
                                         std::int64_t lo, std::int64_t hi, float* out) {
  for (std::int64_t n = 0; n < count; ++n) {
    const float* src = y + n * dim;
    for (std::int64_t k = indptr[rows[n]]; k < indptr[rows[n] + 1]; ++k) {
      const float w = values[k];
      float* dst = out + static_cast<std::int64_t>(indices[k]) * dim;
      for (std::int64_t d = lo; d < hi; ++d) dst[d] += w * src[d];
    }
  }
}

#define SEMREC_KERNELS(suffix, attributes, width)                                                \
  attributes void rows_product_##suffix(const std::int64_t* indptr, const std::int32_t* indices, \
                                        const float* values, const std::int32_t* rows,           \
                                        std::int64_t begin, std::int64_t end, const float* x,    \
                                        std::int64_t dim, float* out) {                          \
    rows_product_body<width>(indptr, indices, values, rows, begin, end, x, dim, out);            \
  }                                                                                              \
  attributes void transposed_slice_##suffix(                                                     \
      const std::int64_t* indptr, const std::int32_t* indices, const float* values,              \
      const std::int32_t* rows, std::int64_t count, const float* y, std::int64_t dim,            \
      std::int64_t lo, std::int64_t hi, float* out) {                                            \
    transposed_slice_body(indptr, indices, values, rows, count, y, dim, lo, hi, out);            \
  }

SEMREC_KERNELS(generic, , 4)
#ifdef SEMREC_DISPATCH
SEMREC_KERNELS(avx2, __attribute__((target("avx2,fma"))), 8)
SEMREC_KERNELS(avx512, __attribute__((target("avx512f"))), 16)
#endif

struct Kernels {
  decltype(&rows_product_generic) rows_product = rows_product_generic;
  decltype(&transposed_slice_generic) transposed_slice = transposed_slice_generic;
};

// The variant for this CPU, capped by SEMREC_ISA (avx512, avx2 or generic), chosen once.
const Kernels& kernels() {
  static const Kernels chosen = [] {
    Kernels k;
#ifdef SEMREC_DISPATCH
    const char* cap = std::getenv("SEMREC_ISA");
    const std::string limit = cap && *cap ? cap : "avx512";    // empty: unset, as in Python
    const bool wide = limit == "avx512" || limit == "native";  // native: the CPU's own best
    if (wide && __builtin_cpu_supports("avx512f")) {
      k.rows_product = rows_product_avx512;
      k.transposed_slice = transposed_slice_avx512;
    } else if (limit != "generic" && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma")) {
      k.rows_product = rows_product_avx2;
      k.transposed_slice = transposed_slice_avx2;
    }
#endif
    return k;
  }();
  return chosen;
}

}  // namespace

void SparseRows::multiply(const float* x, std::int64_t dim, float* out) const {
  at::parallel_for(0, rows(), 64, [&](std::int64_t begin, std::int64_t end) {
    kernels().rows_product(indptr_.data(), indices_.data(), values_.data(), nullptr, begin, end, x,
                           dim, out);
  });
}

void SparseRows::multiply_rows(const std::int32_t* rows, std::int64_t count, const float* x,
                               std::int64_t dim, float* out) const {
  at::parallel_for(0, count, 64, [&](std::int64_t begin, std::int64_t end) {
    kernels().rows_product(indptr_.data(), indices_.data(), values_.data(), rows, begin, end, x,
                           dim, out);
  });
}

void SparseRows::add_transposed_rows(const std::int32_t* rows, std::int64_t count, const float* y,
                                     std::int64_t dim, float* out) const {
  constexpr std::int64_t kSlice = 64;  // columns per task
  const std::int64_t slices = (dim + kSlice - 1) / kSlice;
  at::parallel_for(0, slices, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t s = begin; s < end; ++s) {
      kernels().transposed_slice(indptr_.data(), indices_.data(), values_.data(), rows, count, y,
                                 dim, s * kSlice, std::min(dim, (s + 1) * kSlice), out);
    }
  });
}

}  // namespace semrec::train
