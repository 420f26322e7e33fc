#include "harness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace checks {

long g_passed = 0;
long g_failed = 0;

void expect(bool ok, const std::string& what, const char* file, int line) {
  if (ok) {
    ++g_passed;
    return;
  }
  if (++g_failed <= 30) std::fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what.c_str());
}

bool near(double a, double b, double tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= tol * (1.0 + std::fabs(b));
}

bool Csr::contains(std::int64_t row, std::int32_t col) const {
  return std::binary_search(indices.begin() + indptr[row], indices.begin() + indptr[row + 1], col);
}

Csr random_csr(Rng& rng, std::int64_t rows, std::int64_t cols, double density, float low,
               float high) {
  Csr m;
  m.rows = rows;
  m.cols = cols;
  m.indices.reserve(1);  // non-null data() even when empty, like a NumPy array's buffer
  m.values.reserve(1);
  std::bernoulli_distribution keep(density);
  std::uniform_real_distribution<float> value(low, high);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      if (!keep(rng)) continue;
      m.indices.push_back(static_cast<std::int32_t>(c));
      m.values.push_back(value(rng));
    }
    m.indptr.push_back(static_cast<std::int64_t>(m.indices.size()));
  }
  return m;
}

std::vector<float> random_matrix(Rng& rng, std::int64_t rows, std::int64_t cols) {
  std::normal_distribution<float> normal;
  std::vector<float> m(static_cast<std::size_t>(rows * cols));
  for (float& v : m) v = normal(rng);
  return m;
}

semrec::MatrixView view(const std::vector<float>& m, std::int64_t rows, std::int64_t cols) {
  return {m.data(), rows, cols};
}

std::vector<float> unit_rows(std::vector<float> m, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = m.data() + r * cols;
    const double norm = std::sqrt(dot(row, row, cols));
    if (norm == 0.0) continue;
    for (std::int64_t d = 0; d < cols; ++d) row[d] = static_cast<float>(row[d] / norm);
  }
  return m;
}

double dot(const float* a, const float* b, std::int64_t n) {
  double total = 0.0;
  for (std::int64_t d = 0; d < n; ++d) total += static_cast<double>(a[d]) * b[d];
  return total;
}

void check_topk_row(const std::vector<double>& reference, const std::int32_t* ids,
                    const float* scores, int k, double tol, const std::string& label) {
  const auto n = static_cast<std::int64_t>(reference.size());
  const double ninf = -std::numeric_limits<double>::infinity();
  const auto eligible =
      std::count_if(reference.begin(), reference.end(), [&](double s) { return s != ninf; });
  const auto expected = std::min<std::int64_t>(k, eligible);
  std::vector<char> taken(static_cast<std::size_t>(n), 0);
  bool ok = true;
  for (std::int64_t r = 0; r < expected && ok; ++r) {
    const std::int32_t id = ids[r];
    ok = id >= 0 && id < n && reference[id] != ninf && !taken[id] &&
         near(scores[r], reference[id], tol);
    if (ok) taken[id] = 1;
    if (ok && r > 0) {
      ok = scores[r] < scores[r - 1] || (scores[r] == scores[r - 1] && id > ids[r - 1]);
    }
  }
  EXPECT(ok, label + ": results are eligible, distinct, correctly scored and ordered");
  bool padded = true;
  for (std::int64_t r = expected; r < k; ++r) {
    padded = padded && ids[r] == -1 && std::isinf(scores[r]) && scores[r] < 0;
  }
  EXPECT(padded, label + ": padding is (-1, -inf)");
  if (expected == 0 || !ok) return;
  const double last = reference[ids[expected - 1]];
  bool complete = true;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!taken[i] && reference[i] != ninf && reference[i] > last + tol * (1.0 + std::fabs(last))) {
      complete = false;
    }
  }
  EXPECT(complete, label + ": no left-out item beats the last result");
}

}  // namespace checks
