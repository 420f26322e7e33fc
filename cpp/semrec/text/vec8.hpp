// Eight floats as one value (a GCC vector type) for the text library's hand-written loops:
// GCC keeps such locals in registers (AVX2 ymm in the x86-64-v3 clones, SSE pairs in the
// baseline ones), where float arrays indexed in loops stayed on the stack, and min / max over
// them vectorise where `omp simd` reductions of std::min / std::max compiled to scalar chains.
// Pass them by reference: a 32-byte vector passed by value changes the baseline build's ABI.
#pragma once

#include <algorithm>
#include <cstdint>

namespace semrec::text {

typedef float Vec8 __attribute__((vector_size(32)));
typedef std::int32_t Int32x8 __attribute__((vector_size(32)));
// Vec8 read or written at any float address.
typedef float Unaligned8 __attribute__((vector_size(32), aligned(4), may_alias));

#define SEMREC_LOAD8(p) (*reinterpret_cast<const ::semrec::text::Unaligned8*>(p))
#define SEMREC_STORE8(p, v) (*reinterpret_cast<::semrec::text::Unaligned8*>(p) = (v))
// A load the compiler must do exactly once, into a register, rather than fold into each
// instruction that uses the value.
#define SEMREC_VOLATILE_LOAD8(p) (*reinterpret_cast<const volatile ::semrec::text::Unaligned8*>(p))

// The smallest and largest of x[0 .. n) (n >= 1): eight running minima and maxima, then the
// last few values. Exact in any order, so every build finds the same two values.
[[gnu::always_inline]] inline void min_max(const float* x, std::int64_t n, float& lowest,
                                           float& highest) {
  Vec8 low = x[0] - Vec8{}, high = low;  // (x[0] + 0 would turn -0 into +0)
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const Vec8 v = SEMREC_LOAD8(x + j);
    low = v < low ? v : low;
    high = high < v ? v : high;
  }
  lowest = low[0], highest = high[0];
  for (int lane = 1; lane < 8; ++lane) {
    lowest = std::min(lowest, low[lane]);
    highest = std::max(highest, high[lane]);
  }
  for (; j < n; ++j) {
    lowest = std::min(lowest, x[j]);
    highest = std::max(highest, x[j]);
  }
}

}  // namespace semrec::text
