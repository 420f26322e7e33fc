// The int8 encoder's GELU (cpp/semrec/text/gelu.hpp, torch-free) against
// 0.5 y (1 + erf(y / sqrt 2)) in double precision from std::erf.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "harness.hpp"
#include "semrec/text/gelu.hpp"

namespace checks {

namespace {

double gelu_reference(double y) { return 0.5 * y * (1.0 + std::erf(y / std::sqrt(2.0))); }

// gelu_erf of each value, eight at a time (the values in different lanes of each vector).
std::vector<float> gelu_of(const std::vector<float>& ys) {
  std::vector<float> out(ys.size());
  for (std::size_t i = 0; i < ys.size(); i += 8) {
    semrec::text::Vec8 v{};
    for (std::size_t k = 0; k < 8 && i + k < ys.size(); ++k) v[k] = ys[i + k];
    semrec::text::gelu_erf(v);
    for (std::size_t k = 0; k < 8 && i + k < ys.size(); ++k) out[i + k] = v[k];
  }
  return out;
}

// The largest absolute error for |y| <= 1 and the largest relative one above (gelu.hpp
// promises 1.1e-7 and 3e-7, also without fused multiply-adds, as the sanitizer build rounds).
struct Errors {
  double absolute = 0.0, relative = 0.0;
};

Errors worst_errors(const std::vector<float>& ys) {
  const std::vector<float> got = gelu_of(ys);
  Errors worst;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const double y = ys[i], error = std::abs(got[i] - gelu_reference(y));
    if (std::abs(y) <= 1.0) {
      worst.absolute = std::max(worst.absolute, error);
    } else {
      worst.relative = std::max(worst.relative, error / std::abs(y));
    }
  }
  return worst;
}

void expect_within_bounds(const std::vector<float>& ys, const std::string& where) {
  const Errors worst = worst_errors(ys);
  EXPECT(worst.absolute <= 1.1e-7,
         "gelu " + where + ": absolute error " + std::to_string(worst.absolute) + " at |y| <= 1");
  EXPECT(worst.relative <= 3e-7,
         "gelu " + where + ": relative error " + std::to_string(worst.relative) + " at |y| > 1");
}

}  // namespace

void check_gelu(Rng& rng) {
  // Every 4096th of a unit on [-12, 12] (past the clamp at 5.5 both ways), then random floats
  // of every magnitude from 1e-30 to 1e30.
  std::vector<float> grid;
  for (int i = -12 * 4096; i <= 12 * 4096; ++i) grid.push_back(static_cast<float>(i) / 4096.0f);
  expect_within_bounds(grid, "on [-12, 12]");

  std::uniform_real_distribution<double> exponent(-30.0, 30.0);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> wide;
  for (int i = 0; i < 100000; ++i) {
    const double magnitude = std::pow(10.0, exponent(rng));
    wide.push_back(static_cast<float>(negative(rng) ? -magnitude : magnitude));
  }
  expect_within_bounds(wide, "from 1e-30 to 1e30");

  // Exact points: 0 and -0 stay zeros, NaN stays NaN, tiny values are halved.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> special = gelu_of({0.0f, -0.0f, nan, 1e-20f, -1e-20f});
  EXPECT(special[0] == 0.0f && special[1] == 0.0f, "gelu(+-0) = 0");
  EXPECT(std::isnan(special[2]), "gelu(NaN) is NaN");
  EXPECT(special[3] == 0.5e-20f && special[4] == -0.5e-20f, "gelu(y) = y / 2 near 0");
}

}  // namespace checks
