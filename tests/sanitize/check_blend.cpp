// semrec::add_normalized_rows against the normalisation computed plainly in long double here,
// and semrec::topk_dense_rows against a full sort of each row's eligible entries.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "semrec/blend.hpp"

namespace checks {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// A row of scores: normal values on a coarse grid (so ties occur), some -inf, scaled by `scale`.
template <class T>
std::vector<T> random_rows(Rng& rng, std::int64_t rows, std::int64_t cols, double excluded,
                           double scale) {
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> unit;
  std::vector<T> s(static_cast<std::size_t>(rows * cols));
  for (T& x : s) {
    x = unit(rng) < excluded ? static_cast<T>(kNegInf)
                             : static_cast<T>(std::round(normal(rng) * 8.0) / 8.0 * scale);
  }
  return s;
}

template <class T>
void normalize_case(Rng& rng, std::int64_t rows, std::int64_t cols, semrec::RowNormalization how,
                    double excluded, double scale) {
  const std::vector<T> s = random_rows<T>(rng, rows, cols, excluded, scale);
  const double weight = 0.75;
  std::vector<double> total(s.size(), 1.0);
  const bool valid =
      semrec::add_normalized_rows(s.data(), rows, cols, how, weight, total.data(), 2);
  const std::string label = std::string("add_normalized_rows ") +
                            (how == semrec::RowNormalization::zscore ? "zscore" : "minmax") +
                            " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                            " scale=" + std::to_string(scale);
  EXPECT(valid, label + ": finite input is valid");
  bool ok = true;
  for (std::int64_t r = 0; r < rows && ok; ++r) {
    const T* row = s.data() + r * cols;
    long double count = 0, sum = 0, lo = INFINITY, hi = -INFINITY;
    for (std::int64_t j = 0; j < cols; ++j) {
      if (row[j] == static_cast<T>(kNegInf)) continue;
      count += 1;
      sum += row[j];
      lo = std::min<long double>(lo, row[j]);
      hi = std::max<long double>(hi, row[j]);
    }
    long double center = lo, spread = hi - lo;
    if (how == semrec::RowNormalization::zscore) {
      center = sum / std::max<long double>(count, 1);
      long double square = 0;
      for (std::int64_t j = 0; j < cols; ++j) {
        if (row[j] != static_cast<T>(kNegInf)) square += (row[j] - center) * (row[j] - center);
      }
      spread = std::sqrt(square / std::max<long double>(count, 1));
    }
    for (std::int64_t j = 0; j < cols && ok; ++j) {
      const double got = total[r * cols + j];
      if (row[j] == static_cast<T>(kNegInf)) {
        ok = got == kNegInf;
      } else {
        const long double v = (count > 0 && spread > 0) ? (row[j] - center) / spread : 0.0L;
        ok = near(got, static_cast<double>(1.0L + weight * v), 1e-9);
      }
    }
  }
  EXPECT(ok, label + ": equals the plain normalisation");
}

template <class T>
void topk_case(Rng& rng, std::int64_t rows, std::int64_t cols, int k, double density,
               bool with_allowed) {
  const std::vector<T> s = random_rows<T>(rng, rows, cols, 0.05, 1.0);
  const Csr exclude = random_csr(rng, rows, cols, density, 0.0f, 1.0f);
  std::uniform_real_distribution<double> unit;
  const std::unique_ptr<bool[]> allowed(new bool[static_cast<std::size_t>(cols) + 1]);
  for (std::int64_t j = 0; j < cols; ++j) allowed[j] = unit(rng) < 0.7;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(rows * k), 7);
  std::vector<float> scores(ids.size(), 7.0f);
  semrec::topk_dense_rows(s.data(), rows, cols, exclude.view(),
                          with_allowed ? allowed.get() : nullptr, k, 2,
                          {ids.data(), scores.data()});
  const std::string label = "topk_dense_rows rows=" + std::to_string(rows) +
                            " cols=" + std::to_string(cols) + " k=" + std::to_string(k) +
                            (with_allowed ? " allowed" : "");
  bool ok = true;
  for (std::int64_t r = 0; r < rows && ok; ++r) {
    std::vector<std::int32_t> order;
    for (std::int32_t j = 0; j < cols; ++j) {
      const T x = s[r * cols + j];
      if (x > static_cast<T>(kNegInf) && !exclude.contains(r, j) && (!with_allowed || allowed[j])) {
        order.push_back(j);
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return s[r * cols + a] > s[r * cols + b];
    });
    for (std::int64_t t = 0; t < k && ok; ++t) {
      const std::int32_t want = t < static_cast<std::int64_t>(order.size()) ? order[t] : -1;
      const float want_score =
          want < 0 ? static_cast<float>(kNegInf) : static_cast<float>(s[r * cols + want]);
      ok = ids[r * k + t] == want && scores[r * k + t] == want_score;
    }
  }
  EXPECT(ok, label + ": the eligible entries by score, ties by the lower id, then padding");
}

}  // namespace

void check_blend(Rng& rng) {
  using semrec::RowNormalization;
  for (RowNormalization how : {RowNormalization::zscore, RowNormalization::minmax}) {
    for (std::int64_t cols : {1, 7, 8, 9, 100, 1003}) {
      normalize_case<float>(rng, 5, cols, how, 0.1, 1.0);
      normalize_case<double>(rng, 5, cols, how, 0.3, 1.0);
    }
    normalize_case<double>(rng, 4, 50, how, 1.0, 1.0);    // every entry excluded
    normalize_case<double>(rng, 4, 50, how, 0.0, 0.0);    // no spread: every entry ties
    normalize_case<double>(rng, 4, 64, how, 0.2, 1e306);  // sums and ranges overflow
    normalize_case<float>(rng, 0, 10, how, 0.0, 1.0);     // no rows
  }
  for (double bad :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    std::vector<double> s(30, 1.0), total(30, 0.0);
    s[17] = bad;
    EXPECT(!semrec::add_normalized_rows(s.data(), 3, 10, RowNormalization::zscore, 1.0,
                                        total.data(), 2),
           "add_normalized_rows reports NaN and +inf entries");
  }
  for (int k : {1, 3, 10, 40, 200}) {
    topk_case<float>(rng, 37, 150, k, 0.1, false);
    topk_case<double>(rng, 37, 150, k, 0.3, true);
  }
  topk_case<double>(rng, 3, 0, 5, 0.0, false);  // no columns: padding only
  std::vector<float> s(6, 1.0f);
  std::vector<std::int32_t> ids(6);
  std::vector<float> out(6);
  EXPECT_THROWS(
      std::invalid_argument,
      semrec::topk_dense_rows(s.data(), 2, 3, {}, nullptr, 0, 1, {ids.data(), out.data()}),
      "topk_dense_rows k=0");
  const std::vector<std::int64_t> indptr{0, 1, 1};
  const std::vector<std::int32_t> indices{3};  // out of range for 3 columns
  EXPECT_THROWS(std::out_of_range,
                semrec::topk_dense_rows(s.data(), 2, 3, {indptr.data(), indices.data(), 2, 3},
                                        nullptr, 3, 1, {ids.data(), out.data()}),
                "topk_dense_rows exclusion index out of range");
}

}  // namespace checks
