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

// low / high: the lane-wise minimum / maximum of themselves and v.
[[gnu::always_inline]] inline void update_min_max(const Vec8& v, Vec8& low, Vec8& high) {
  low = v < low ? v : low;
  high = high < v ? v : high;
}

// The smallest and largest of x[0 .. n) (n >= 1): four sets of eight running minima and maxima
// (one set waited ~4 cycles per 8 values on each comparison's latency), then the last few
// values. Exact in any order, so every build finds the same two values.
[[gnu::always_inline]] inline void min_max(const float* x, std::int64_t n, float& lowest,
                                           float& highest) {
  Vec8 low0 = x[0] - Vec8{}, high0 = low0;  // (x[0] + 0 would turn -0 into +0)
  Vec8 low1 = low0, high1 = low0, low2 = low0, high2 = low0, low3 = low0, high3 = low0;
  std::int64_t j = 0;
  // (Each load into a Vec8 first: bound straight to a Vec8 reference, a load of 4-byte
  // aligned memory would compile as a 32-byte aligned one.)
  for (; j + 32 <= n; j += 32) {
    const Vec8 v0 = SEMREC_LOAD8(x + j), v1 = SEMREC_LOAD8(x + j + 8);
    const Vec8 v2 = SEMREC_LOAD8(x + j + 16), v3 = SEMREC_LOAD8(x + j + 24);
    update_min_max(v0, low0, high0);
    update_min_max(v1, low1, high1);
    update_min_max(v2, low2, high2);
    update_min_max(v3, low3, high3);
  }
  for (; j + 8 <= n; j += 8) {
    const Vec8 v = SEMREC_LOAD8(x + j);
    update_min_max(v, low0, high0);
  }
  update_min_max(low1, low0, high0), update_min_max(high1, low0, high0);
  update_min_max(low2, low0, high0), update_min_max(high2, low0, high0);
  update_min_max(low3, low0, high0), update_min_max(high3, low0, high0);
  lowest = low0[0], highest = high0[0];
  for (int lane = 1; lane < 8; ++lane) {
    lowest = std::min(lowest, low0[lane]);
    highest = std::max(highest, high0[lane]);
  }
  for (; j < n; ++j) {
    lowest = std::min(lowest, x[j]);
    highest = std::max(highest, x[j]);
  }
}

}  // namespace semrec::text
