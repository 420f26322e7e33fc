// BERT's exact (erf) GELU, eight floats at a time, for the int8 layers' dequantising pass: there
// it runs while the values are in registers, where a separate ATen call made one more pass over
// each block (5% of an AVX2 int8 encode of item texts, session 28).
#pragma once

#include "semrec/text/vec8.hpp"

namespace semrec::text {

// GELU(y) = y Phi(y) = h + h erf(y / sqrt 2) with h = y / 2, where erf(y / sqrt 2) =
// y P(y^2) / Q(y^2) on |y| <= 5.5 (beyond it erf is +-1 to float precision, so y is clamped).
// P and Q (degrees 6 and 4) are a near-minimax rational fit made by fit_gelu.py in this folder.
// Against std::erf, over every float up to 12 in magnitude (beyond it the clamp holds): absolute
// error under 1.1e-7 for |y| <= 1, relative error under 3e-7 above it (ATen's erf GELU: 8e-8
// and 4e-7); tests/sanitize/check_gelu.cpp checks samples. NaN stays NaN; like ATen, infinities
// give NaN. 17 operations with FMA, one of them a division.
[[gnu::always_inline]] inline void gelu_erf(Vec8& y) {
  constexpr float kClamp = 5.5f;
  const Vec8 low = Vec8{} - kClamp, high = Vec8{} + kClamp;
  Vec8 c = y < low ? low : y;  // (NaN fails both comparisons and stays NaN)
  c = c > high ? high : c;
  const Vec8 u = c * c;
  Vec8 p = u * 2.23477639e-10f - 4.41544188e-08f;
  p = p * u + 6.47966954e-06f;
  p = p * u + 0.000340589497f;
  p = p * u + 0.00901739765f;
  p = p * u + 0.0718309656f;
  p = p * u + 0.797884285f;
  Vec8 q = u * 6.22967054e-05f + 0.00183021196f;
  q = q * u + 0.0290875025f;
  q = q * u + 0.256691337f;
  q = q * u + 1.0f;
  const Vec8 erf = c * p / q, half = y * 0.5f;
  y = half * erf + half;
}

}  // namespace semrec::text
