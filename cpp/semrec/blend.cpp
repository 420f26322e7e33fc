#include "semrec/blend.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "semrec/topk_selector.hpp"

namespace semrec {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Independent partial sums, added up in a fixed order at the end: the loops vectorise without
// reassociation, and the result does not depend on the thread count.
constexpr int kLanes = 8;

// How a row maps to its normalised values: (x * inverse - center) / spread at finite entries
// (inverse = 1 but for rows that overflow; x * 1 is x).
struct RowAffine {
  double inverse = 1.0;
  double center = 0.0;
  double spread = 0.0;
  bool ok = false;  // finite entries with spread; otherwise every finite entry gives 0
};

// fn(j, lane) for j in [0, n), lane = j % kLanes, in blocks of kLanes the compiler vectorises.
template <class Fn>
inline void each_in_lanes(std::int64_t n, Fn&& fn) {
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) fn(j + l, l);
  }
  for (int l = 0; j < n; ++j, ++l) fn(j, l);
}

double lanes_sum(const double* lane) {
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += lane[l];
  return total;
}

// Mean and population std (zscore) or min and range (minmax) of x * inverse over the finite
// entries; counts NaN and +inf entries into `bad`.
template <class T>
RowAffine row_affine(const T* s, std::int64_t n, RowNormalization how, double inverse,
                     std::int64_t& bad) {
  RowAffine a;
  a.inverse = inverse;
  double count[kLanes] = {}, bad_lanes[kLanes] = {};
  if (how == RowNormalization::zscore) {
    double sum[kLanes] = {}, square[kLanes] = {};
    each_in_lanes(n, [&](std::int64_t j, int l) {
      const double x = static_cast<double>(s[j]) * inverse;
      const bool finite = std::fabs(x) < kInf;  // NaN: false
      sum[l] += finite ? x : 0.0;
      count[l] += finite ? 1.0 : 0.0;
      bad_lanes[l] += (x < kInf) ? 0.0 : 1.0;  // NaN or +inf
    });
    const double c = lanes_sum(count);
    a.center = lanes_sum(sum) / std::max(c, 1.0);
    each_in_lanes(n, [&](std::int64_t j, int l) {
      const double x = static_cast<double>(s[j]) * inverse;
      const double d = std::fabs(x) < kInf ? x - a.center : 0.0;
      square[l] += d * d;
    });
    a.spread = std::sqrt(lanes_sum(square) / std::max(c, 1.0));
    a.ok = c > 0 && a.spread > 0;
  } else {
    double lo[kLanes], hi[kLanes];
    std::fill(lo, lo + kLanes, kInf);
    std::fill(hi, hi + kLanes, -kInf);
    each_in_lanes(n, [&](std::int64_t j, int l) {
      const double x = static_cast<double>(s[j]) * inverse;
      const bool finite = std::fabs(x) < kInf;  // NaN: false
      const double low = finite ? x : kInf, high = finite ? x : -kInf;
      lo[l] = low < lo[l] ? low : lo[l];
      hi[l] = high > hi[l] ? high : hi[l];
      count[l] += finite ? 1.0 : 0.0;
      bad_lanes[l] += (x < kInf) ? 0.0 : 1.0;
    });
    a.center = *std::min_element(lo, lo + kLanes);
    a.spread = *std::max_element(hi, hi + kLanes) - a.center;
    a.ok = lanes_sum(count) > 0 && a.spread > 0;
  }
  bad += static_cast<std::int64_t>(lanes_sum(bad_lanes));
  return a;
}

template <class T>
double largest_magnitude(const T* s, std::int64_t n) {
  double m = 0.0;
  for (std::int64_t j = 0; j < n; ++j) {
    const double x = std::fabs(static_cast<double>(s[j]));
    if (x < kInf) m = std::max(m, x);
  }
  return m;
}

}  // namespace

template <class T>
bool add_normalized_rows(const T* scores, std::int64_t rows, std::int64_t cols,
                         RowNormalization how, double weight, double* total, int num_threads,
                         const StopCheck& stop) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("rows and cols must be >= 0");
  std::atomic<bool> valid{true};
  parallel_tasks(rows, num_threads, stop, [&](std::int64_t r) {
    const T* s = scores + r * cols;
    double* out = total + r * cols;
    std::int64_t bad = 0;
    RowAffine a = row_affine(s, cols, how, 1.0, bad);
    if (bad > 0) {
      valid = false;
      return;
    }
    if (!std::isfinite(a.center) || !std::isfinite(a.spread)) {
      // Finite scores whose sum or range overflows: the same statistics on x / max |x|.
      a = row_affine(s, cols, how, 1.0 / largest_magnitude(s, cols), bad);
    }
    // Without spread every finite entry ties at 0 (centre 0 times 0); -inf stays -inf.
    const double center = a.ok ? a.center : 0.0, inverse = a.ok ? a.inverse : 0.0;
    const double spread = a.ok ? a.spread : 1.0;
    for (std::int64_t j = 0; j < cols; ++j) {
      const double x = static_cast<double>(s[j]);
      const double v = x > -kInf ? (x * inverse - center) / spread : -kInf;
      out[j] += weight * v;
    }
  });
  return valid;
}

template <class T>
void topk_dense_rows(const T* scores, std::int64_t rows, std::int64_t cols, const CsrView& exclude,
                     const bool* allowed, int k, int num_threads, TopKOutput out,
                     const StopCheck& stop) {
  if (k < 1) throw std::invalid_argument("k must be >= 1");
  if (rows < 0 || cols < 0) throw std::invalid_argument("rows and cols must be >= 0");
  check_csr(exclude, rows, cols, "exclude", /*require_sorted=*/false);
  constexpr std::int64_t kRowsPerTask = 16;
  const std::int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  parallel_tasks(tasks, num_threads, stop, [&](std::int64_t task) {
    // blocked[j]: item j may not enter this row's list (not allowed, or excluded for it).
    std::vector<char> blocked(static_cast<std::size_t>(cols), 0);
    if (allowed != nullptr) {
      for (std::int64_t j = 0; j < cols; ++j) blocked[j] = allowed[j] ? 0 : 1;
    }
    BasicTopKSelector<T> top(k);
    const std::int64_t end = std::min(rows, (task + 1) * kRowsPerTask);
    for (std::int64_t r = task * kRowsPerTask; r < end; ++r) {
      const std::int64_t a = exclude.present() ? exclude.indptr[r] : 0;
      const std::int64_t b = exclude.present() ? exclude.indptr[r + 1] : 0;
      for (std::int64_t p = a; p < b; ++p) blocked[exclude.indices[p]] = 1;
      const T* s = scores + r * cols;
      T bar = top.threshold();
      // Ids arrive in increasing order, so an entry equal to the bar never enters.
      for (std::int64_t j = 0; j < cols; ++j) {
        if (!(s[j] > bar) || blocked[j]) continue;
        top.push(s[j], static_cast<std::int32_t>(j));
        bar = top.threshold();
      }
      top.write(out.ids + r * k, out.scores + r * k);
      for (std::int64_t p = a; p < b; ++p) {
        const std::int32_t j = exclude.indices[p];
        blocked[j] = (allowed != nullptr && !allowed[j]) ? 1 : 0;
      }
    }
  });
}

template bool add_normalized_rows<float>(const float*, std::int64_t, std::int64_t, RowNormalization,
                                         double, double*, int, const StopCheck&);
template bool add_normalized_rows<double>(const double*, std::int64_t, std::int64_t,
                                          RowNormalization, double, double*, int, const StopCheck&);
template void topk_dense_rows<float>(const float*, std::int64_t, std::int64_t, const CsrView&,
                                     const bool*, int, int, TopKOutput, const StopCheck&);
template void topk_dense_rows<double>(const double*, std::int64_t, std::int64_t, const CsrView&,
                                      const bool*, int, int, TopKOutput, const StopCheck&);

}  // namespace semrec
