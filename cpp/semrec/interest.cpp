#include "semrec/interest.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace semrec {

namespace {

// A profile whose sum is this small relative to the total weight that went into it is the
// rounding residue of likes and dislikes cancelling: it is reported as zero, not as a
// direction of noise.
constexpr double kZeroTolerance = 1e-5;
// A streaming user's reference time moves forward only when an event is this many half-lives
// past it, so in-order streams rarely pay for a rescale (factors stay below 2^16).
constexpr double kRebaseHalfLives = 16.0;
constexpr std::int64_t kUsersPerTask = 64;
constexpr int kLanes = 64;  // independent partial sums: keeps the squared-norm chain short

// y += a·x; returns ‖x‖² (float lanes summed in double).
double axpy_norm(float a, const float* __restrict x, float* __restrict y, std::int64_t n) {
  float lanes[kLanes] = {};
  std::int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float e = x[d + l];
      y[d + l] += a * e;
      lanes[l] += e * e;
    }
  }
  double total = 0.0;
  for (; d < n; ++d) {
    y[d] += a * x[d];
    total += static_cast<double>(x[d]) * x[d];
  }
  for (float v : lanes) total += v;
  return total;
}

void axpy(float a, const float* __restrict x, float* __restrict y, std::int64_t n) {
  for (std::int64_t d = 0; d < n; ++d) y[d] += a * x[d];
}

void scale(float a, float* y, std::int64_t n) {
  for (std::int64_t d = 0; d < n; ++d) y[d] *= a;
}

bool all_finite(const float* x, std::int64_t n) {
  bool finite = true;
  for (std::int64_t d = 0; d < n; ++d) finite &= std::isfinite(x[d]);
  return finite;
}

// What a refused event reports: max |sum·shrink + f·x| in double (sum null: a new user's zero
// sum), or infinity when that fits in float (then only the float factor f overflowed).
double overflow_peak(const float* sum, double shrink, double f, const float* x, std::int64_t n) {
  double peak = 0.0;
  for (std::int64_t d = 0; d < n; ++d) {
    const double v = (sum != nullptr ? sum[d] * shrink : 0.0) + f * x[d];
    peak = std::max(peak, std::fabs(v));  // a NaN term (inf · 0) is skipped
  }
  if (peak > std::numeric_limits<float>::max()) return peak;
  return std::numeric_limits<double>::infinity();
}

// ‖x‖² of a profile sum, in double: float squares underflow for tiny vectors (1e-30, whose
// profile then came out zero or too long) and overflow for huge ones. Once per profile, so the
// double lanes cost nothing measurable.
double squared_norm(const float* x, std::int64_t n) {
  constexpr int kNormLanes = 8;
  double lanes[kNormLanes] = {};
  std::int64_t d = 0;
  for (; d + kNormLanes <= n; d += kNormLanes) {
    for (int l = 0; l < kNormLanes; ++l) lanes[l] += static_cast<double>(x[d + l]) * x[d + l];
  }
  double total = 0.0;
  for (; d < n; ++d) total += static_cast<double>(x[d]) * x[d];
  for (double v : lanes) total += v;
  return total;
}

// Writes sum / ‖sum‖ into out, or zeros when the sum is empty or cancelled out.
void normalise_into(const float* sum, double mass, std::int64_t n, float* out) {
  const double norm = std::sqrt(squared_norm(sum, n));
  if (!(norm > kZeroTolerance * mass) || norm == 0.0) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  const float inv = static_cast<float>(1.0 / norm);
  for (std::int64_t d = 0; d < n; ++d) out[d] = sum[d] * inv;
}

// Asks for a whole embedding row ahead of its use: rows of random items are the kernel's
// memory traffic, and the hardware prefetcher only starts after the first misses of a row.
void prefetch_row(MatrixView items, std::int64_t i) {
  if (i < 0 || i >= items.rows) return;
  const char* p = reinterpret_cast<const char*>(items.row(i));
  const std::int64_t bytes = items.cols * static_cast<std::int64_t>(sizeof(float));
  for (std::int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b);
}

// No more threads than tasks: waking an idle OpenMP thread costs more than a small task.
int useful_threads(int num_threads, std::int64_t n_tasks) {
  if (num_threads < 1 || n_tasks >= num_threads) return num_threads;
  return static_cast<int>(std::max<std::int64_t>(n_tasks, 1));
}

double decay(double dt, double half_life) { return std::exp2(-dt / half_life); }

template <class Time>
double row_reference(const InterestEvents<Time>& ev, std::int64_t r) {
  double ref = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = ev.csr.indptr[r]; j < ev.csr.indptr[r + 1]; ++j) {
    ref = std::max(ref, static_cast<double>(ev.times[j]));
  }
  return ref;
}

// acc (zeroed by the caller) += Σ_j w_j·decay(ref − t_j)·e_j over row r; returns the mass.
template <class Time>
double accumulate_row(const InterestEvents<Time>& ev, std::int64_t r, MatrixView items,
                      double half_life, double ref, float* acc) {
  const bool decayed = half_life > 0.0;
  double mass = 0.0;
  const std::int64_t end = ev.csr.indptr[r + 1];
  for (std::int64_t j = ev.csr.indptr[r]; j < end; ++j) {
    const std::int32_t i = ev.csr.indices[j];
    if (i < 0 || i >= items.rows) throw std::out_of_range("interactions: item id out of range");
    if (j + 1 < end) prefetch_row(items, ev.csr.indices[j + 1]);
    double f = ev.weights[j];
    if (decayed) f *= decay(ref - static_cast<double>(ev.times[j]), half_life);
    const float a = static_cast<float>(f);
    if (a == 0.0f) continue;
    mass += std::fabs(f) * std::sqrt(axpy_norm(a, items.row(i), acc, items.cols));
  }
  return mass;
}

template <class Time>
void check_events(const InterestEvents<Time>& ev, double half_life) {
  if (ev.csr.indptr == nullptr || ev.weights == nullptr) {
    throw std::invalid_argument("interactions must have a structure and weights");
  }
  if (half_life > 0.0 && ev.times == nullptr) {
    throw std::invalid_argument("time decay (half_life) needs timestamps");
  }
}

}  // namespace

template <class Time>
void interest_profiles(InterestEvents<Time> events, MatrixView items, double half_life,
                       int num_threads, float* out, const StopCheck& stop) {
  check_events(events, half_life);
  const std::int64_t n_users = events.csr.rows;
  const std::int64_t dim = items.cols;
  const std::int64_t n_tasks = (n_users + kUsersPerTask - 1) / kUsersPerTask;
  parallel_tasks(n_tasks, useful_threads(num_threads, n_tasks), stop, [&](std::int64_t task) {
    const std::int64_t end = std::min(n_users, (task + 1) * kUsersPerTask);
    for (std::int64_t u = task * kUsersPerTask; u < end; ++u) {
      float* row = out + u * dim;
      std::fill(row, row + dim, 0.0f);
      const double ref = half_life > 0.0 ? row_reference(events, u) : 0.0;
      const double mass = accumulate_row(events, u, items, half_life, ref, row);
      normalise_into(row, mass, dim, row);
    }
  });
}

template void interest_profiles<std::int64_t>(InterestEvents<std::int64_t>, MatrixView, double, int,
                                              float*, const StopCheck&);
template void interest_profiles<double>(InterestEvents<double>, MatrixView, double, int, float*,
                                        const StopCheck&);

InterestState::InterestState(std::int64_t dim, double half_life)
    : dim_(dim), half_life_(half_life > 0.0 ? half_life : 0.0) {
  if (dim < 1) throw std::invalid_argument("dim must be >= 1");
  if (!std::isfinite(half_life)) throw std::invalid_argument("half_life must be finite");
  scratch_.resize(static_cast<std::size_t>(dim));
}

void InterestState::grow(std::int64_t n_users) {
  if (n_users <= this->n_users()) return;
  sums_.resize(static_cast<std::size_t>(n_users * dim_), 0.0f);
  ref_.resize(static_cast<std::size_t>(n_users), 0.0);
  mass_.resize(static_cast<std::size_t>(n_users), 0.0);
  count_.resize(static_cast<std::size_t>(n_users), 0);
}

void InterestState::reset(const std::int64_t* users, std::int64_t n) {
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t u = users[k];
    if (u < 0 || u >= n_users()) throw std::out_of_range("user id out of range");
    std::fill(sums_.begin() + u * dim_, sums_.begin() + (u + 1) * dim_, 0.0f);
    ref_[u] = 0.0;
    mass_[u] = 0.0;
    count_[u] = 0;
  }
}

void InterestState::add(std::int64_t user, const float* item, float weight, double t) {
  if (user < 0) throw std::out_of_range("user id out of range");
  const bool known = user < n_users();
  const float* before = known ? sum(user) : nullptr;
  double ref = known ? ref_[user] : 0.0;
  double mass = known ? mass_[user] : 0.0;
  const std::int64_t count = known ? count_[user] : 0;
  // The same operations as on the sum in place, on a copy: committed only if it stays finite.
  float* next = scratch_.data();
  if (known) {
    std::copy(before, before + dim_, next);
  } else {
    std::fill(next, next + dim_, 0.0f);
  }
  double shrink = 1.0;
  double f = weight;
  if (half_life_ > 0.0) {
    if (count == 0) {
      ref = t;
    } else if (t > ref + kRebaseHalfLives * half_life_) {
      shrink = decay(t - ref, half_life_);
      scale(static_cast<float>(shrink), next, dim_);
      mass *= shrink;
      ref = t;
    }
    f *= decay(ref - t, half_life_);
  }
  const float a = static_cast<float>(f);
  if (a != 0.0f) mass += std::fabs(f) * std::sqrt(axpy_norm(a, item, next, dim_));
  if (!all_finite(next, dim_)) {
    throw SumOverflow(user, overflow_peak(before, shrink, f, item, dim_));
  }
  if (!known) grow(user + 1);
  std::copy(next, next + dim_, sums_.data() + user * dim_);
  ref_[user] = ref;
  mass_[user] = mass;
  count_[user] = count + 1;
  if (!timed_ || t > latest_) latest_ = t;
  timed_ = true;
}

template <class Time>
void InterestState::add_many(MatrixView items, std::int64_t n, const std::int64_t* users,
                             const std::int32_t* ids, const float* weights, const Time* times,
                             const StopCheck& stop) {
  if (items.cols != dim_) throw std::invalid_argument("items must have the state's dimension");
  const double now = latest_;
  for (std::int64_t k = 0; k < n; ++k) {
    if ((k & 0xffff) == 0 && k > 0 && stop && stop()) throw Interrupted();
    const std::int64_t u = users[k];
    const std::int32_t i = ids[k];
    if (u < 0 || u >= n_users() || i < 0 || i >= items.rows) {
      throw std::out_of_range("event " + std::to_string(k) + ": user or item id out of range");
    }
    if (k + 2 < n) {  // random rows: touch their first line early (whole rows measured slower)
      const std::int64_t next_user = users[k + 2];
      const std::int32_t next_item = ids[k + 2];
      if (next_user >= 0 && next_user < n_users()) __builtin_prefetch(sum(next_user));
      if (next_item >= 0 && next_item < items.rows) __builtin_prefetch(items.row(next_item));
    }
    add(u, items.row(i), weights ? weights[k] : 1.0f, times ? static_cast<double>(times[k]) : now);
  }
}

template void InterestState::add_many<std::int64_t>(MatrixView, std::int64_t, const std::int64_t*,
                                                    const std::int32_t*, const float*,
                                                    const std::int64_t*, const StopCheck&);
template void InterestState::add_many<double>(MatrixView, std::int64_t, const std::int64_t*,
                                              const std::int32_t*, const float*, const double*,
                                              const StopCheck&);

void InterestState::merge(std::int64_t user, const float* partial, double ref, double mass,
                          std::int64_t count) {
  if (count == 0) return;
  float* sum = sums_.data() + user * dim_;
  if (half_life_ > 0.0 && count_[user] == 0) {
    ref_[user] = ref;
  } else if (half_life_ > 0.0 && ref > ref_[user]) {
    const double shrink = decay(ref - ref_[user], half_life_);
    scale(static_cast<float>(shrink), sum, dim_);
    mass_[user] *= shrink;
    ref_[user] = ref;
  }
  const double f = half_life_ > 0.0 ? decay(ref_[user] - ref, half_life_) : 1.0;
  axpy(static_cast<float>(f), partial, sum, dim_);
  mass_[user] += f * mass;
  count_[user] += count;
}

template <class Time>
void InterestState::add_rows(InterestEvents<Time> events, MatrixView items, std::int64_t first_user,
                             int num_threads, const StopCheck& stop) {
  check_events(events, half_life_);
  if (items.cols != dim_) throw std::invalid_argument("items must have the state's dimension");
  const std::int64_t rows = events.csr.rows;
  if (first_user < 0 || first_user + rows > n_users()) {
    throw std::out_of_range("rows extend past the state's users");
  }
  const std::int64_t n_tasks = (rows + kUsersPerTask - 1) / kUsersPerTask;
  std::vector<double> task_latest(static_cast<std::size_t>(n_tasks),
                                  -std::numeric_limits<double>::infinity());
  parallel_tasks(n_tasks, useful_threads(num_threads, n_tasks), stop, [&](std::int64_t task) {
    std::vector<float> partial(static_cast<std::size_t>(dim_));
    const std::int64_t end = std::min(rows, (task + 1) * kUsersPerTask);
    for (std::int64_t r = task * kUsersPerTask; r < end; ++r) {
      const std::int64_t count = events.csr.indptr[r + 1] - events.csr.indptr[r];
      if (count == 0) continue;
      double ref = 0.0;
      if (events.times != nullptr) {
        ref = row_reference(events, r);
        task_latest[task] = std::max(task_latest[task], ref);
      }
      std::fill(partial.begin(), partial.end(), 0.0f);
      const double mass = accumulate_row(events, r, items, half_life_, ref, partial.data());
      merge(first_user + r, partial.data(), ref, mass, count);
    }
  });
  for (double t : task_latest) {
    if (t == -std::numeric_limits<double>::infinity()) continue;
    if (!timed_ || t > latest_) latest_ = t;
    timed_ = true;
  }
}

template void InterestState::add_rows<std::int64_t>(InterestEvents<std::int64_t>, MatrixView,
                                                    std::int64_t, int, const StopCheck&);
template void InterestState::add_rows<double>(InterestEvents<double>, MatrixView, std::int64_t, int,
                                              const StopCheck&);

void InterestState::profiles(const std::int64_t* users, std::int64_t n, int num_threads,
                             float* out) const {
  for (std::int64_t k = 0; k < n; ++k) {
    if (users[k] < 0 || users[k] >= n_users()) throw std::out_of_range("user id out of range");
  }
  const auto block = [&](std::int64_t task) {
    const std::int64_t end = std::min(n, (task + 1) * kUsersPerTask);
    for (std::int64_t k = task * kUsersPerTask; k < end; ++k) {
      normalise_into(sum(users[k]), mass_[users[k]], dim_, out + k * dim_);
    }
  };
  const std::int64_t n_tasks = (n + kUsersPerTask - 1) / kUsersPerTask;
  if (n_tasks <= 1) {  // one user on the real-time path: no parallel region to start
    if (n_tasks == 1) block(0);
    return;
  }
  parallel_tasks(n_tasks, num_threads, {}, block);
}

}  // namespace semrec
