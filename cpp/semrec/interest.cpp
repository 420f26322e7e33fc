#include "semrec/interest.hpp"

#include <algorithm>
#include <bit>
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
// Sums whose bound stays below this (a quarter of float's range: room for rounding) cannot
// overflow.
constexpr double kSafeSum = std::numeric_limits<float>::max() / 4.0;
constexpr std::int64_t kUsersPerTask = 64;
constexpr int kLanes = 64;  // independent partial sums: keeps the squared-norm chain short

// ‖x‖² in double: float squares underflow for tiny vectors (1e-30, whose profile then came out
// zero or too long) and overflow for huge ones. Once per profile (and per item too large for
// float squares), so the double lanes cost nothing measurable.
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

// ‖x‖² from float lanes, or recounted in double when a float square overflowed (entries above
// ~1.8e19): an infinite item norm made every profile the item entered read as cancelled (zero).
double recounted_if_overflowed(double total, const float* x, std::int64_t n) {
  return std::isfinite(total) ? total : squared_norm(x, n);
}

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
  return recounted_if_overflowed(total, x, n);
}

// out = y + a·x, the same float operations as axpy_norm written aside; returns ‖x‖².
double axpy_norm_into(float a, const float* __restrict x, const float* __restrict y,
                      float* __restrict out, std::int64_t n) {
  float lanes[kLanes] = {};
  std::int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float e = x[d + l];
      out[d + l] = y[d + l] + a * e;
      lanes[l] += e * e;
    }
  }
  double total = 0.0;
  for (; d < n; ++d) {
    out[d] = y[d] + a * x[d];
    total += static_cast<double>(x[d]) * x[d];
  }
  for (float v : lanes) total += v;
  return recounted_if_overflowed(total, x, n);
}

void axpy(float a, const float* __restrict x, float* __restrict y, std::int64_t n) {
  for (std::int64_t d = 0; d < n; ++d) y[d] += a * x[d];
}

void scale(float a, float* y, std::int64_t n) {
  for (std::int64_t d = 0; d < n; ++d) y[d] *= a;
}

bool all_finite(const float* x, std::int64_t n) {
  constexpr std::uint32_t kExponent = 0x7f800000u;  // all ones: inf or NaN
  std::uint32_t special = 0;
  for (std::int64_t d = 0; d < n; ++d) {
    special |=
        static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(x[d]) & kExponent) == kExponent);
  }
  return special == 0;
}

// What a refused event reports: max |sum·shrink + f·x| in double (sum null: a new user's zero
// sum), or infinity when that fits in float (then only float's rounding of f or x overflowed).
template <class T>
double overflow_peak(const float* sum, double shrink, double f, const T* x, std::int64_t n) {
  double peak = 0.0;
  for (std::int64_t d = 0; d < n; ++d) {
    const double v = (sum != nullptr ? sum[d] * shrink : 0.0) + f * x[d];
    peak = std::max(peak, std::fabs(v));  // a NaN term (inf · 0) is skipped
  }
  if (peak > std::numeric_limits<float>::max()) return peak;
  return std::numeric_limits<double>::infinity();
}

// Writes sum / ‖sum‖ into out, or zeros when the sum is empty or cancelled out.
void normalise_into(const float* sum, double mass, std::int64_t n, float* out) {
  const double norm = std::sqrt(squared_norm(sum, n));
  if (!(norm > kZeroTolerance * mass) || norm == 0.0) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  const double inv = 1.0 / norm;  // in double: a norm below 2^-128 would make a float inv inf
  for (std::int64_t d = 0; d < n; ++d) out[d] = static_cast<float>(sum[d] * inv);
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

// The decay's reference: the latest time of row r's events with a weight (-inf when none). An
// event of weight 0 contributes nothing, so it must not move the reference either: older
// events would decay towards 0 relative to it.
template <class Time>
double row_reference(const InterestEvents<Time>& ev, std::int64_t r) {
  double ref = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = ev.csr.indptr[r]; j < ev.csr.indptr[r + 1]; ++j) {
    if (ev.weights[j] != 0.0f) ref = std::max(ref, static_cast<double>(ev.times[j]));
  }
  return ref;
}

// The latest time of any of row r's events, weight 0 or not (the state's latest_).
template <class Time>
double row_latest(const InterestEvents<Time>& ev, std::int64_t r) {
  double latest = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = ev.csr.indptr[r]; j < ev.csr.indptr[r + 1]; ++j) {
    latest = std::max(latest, static_cast<double>(ev.times[j]));
  }
  return latest;
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
    if (ev.weights[j] == 0.0f) continue;  // nothing to add (and ref may be -inf)
    double f = ev.weights[j];
    if (decayed) f *= decay(ref - static_cast<double>(ev.times[j]), half_life);
    const float a = static_cast<float>(f);
    if (a == 0.0f) continue;
    mass += std::fabs(f) * std::sqrt(axpy_norm(a, items.row(i), acc, items.cols));
  }
  return mass;
}

// What a refused row reports: its events summed in double as accumulate_row sums them in float,
// merged into the user's sum (has_sum: the user had events, held at sum_ref) as merge does.
template <class Time>
double row_overflow_peak(const InterestEvents<Time>& ev, std::int64_t r, MatrixView items,
                         double half_life, const float* sum, bool has_sum, double sum_ref) {
  const bool decayed = half_life > 0.0;
  const double ref = ev.times != nullptr ? row_reference(ev, r) : 0.0;
  std::vector<double> row(static_cast<std::size_t>(items.cols), 0.0);
  for (std::int64_t j = ev.csr.indptr[r]; j < ev.csr.indptr[r + 1]; ++j) {
    if (ev.weights[j] == 0.0f) continue;
    double f = ev.weights[j];
    if (decayed) f *= decay(ref - static_cast<double>(ev.times[j]), half_life);
    const float* e = items.row(ev.csr.indices[j]);
    for (std::int64_t d = 0; d < items.cols; ++d) row[d] += f * e[d];
  }
  double shrink = 1.0, f = 1.0;
  if (decayed && has_sum && ref > sum_ref) shrink = decay(ref - sum_ref, half_life);
  if (decayed && has_sum && ref <= sum_ref) f = decay(sum_ref - ref, half_life);
  return overflow_peak(has_sum ? sum : nullptr, shrink, f, row.data(), items.cols);
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

struct InterestState::Saved {
  std::int64_t n_users = 0;
  double latest = 0.0;
  bool timed = false;
  std::vector<std::int64_t> users;  // existing users the call changes, each once
  std::vector<float> sums;          // their sums, one row each (users without events: none)
  std::vector<double> ref;
  std::vector<double> mass;
  std::vector<std::int64_t> count;
};

InterestState::Saved InterestState::begin_saving() {
  ++call_;  // marks the users this call has saved (saved_in_)
  Saved saved;
  saved.n_users = n_users();
  saved.latest = latest_;
  saved.timed = timed_;
  return saved;
}

void InterestState::save(Saved& saved, std::int64_t user) const {
  saved.users.push_back(user);
  saved.ref.push_back(ref_[user]);
  saved.mass.push_back(mass_[user]);
  saved.count.push_back(count_[user]);
  if (count_[user] > 0) saved.sums.insert(saved.sums.end(), sum(user), sum(user) + dim_);
}

void InterestState::restore(const Saved& saved) {
  sums_.resize(static_cast<std::size_t>(saved.n_users * dim_));
  saved_in_.resize(static_cast<std::size_t>(saved.n_users));
  ref_.resize(static_cast<std::size_t>(saved.n_users));
  mass_.resize(static_cast<std::size_t>(saved.n_users));
  count_.resize(static_cast<std::size_t>(saved.n_users));
  const float* row = saved.sums.data();
  for (std::size_t k = 0; k < saved.users.size(); ++k) {
    const std::int64_t u = saved.users[k];
    float* dst = sums_.data() + u * dim_;
    if (saved.count[k] > 0) {
      std::copy(row, row + dim_, dst);
      row += dim_;
    } else {
      std::fill(dst, dst + dim_, 0.0f);  // no events: the sum was zero
    }
    ref_[u] = saved.ref[k];
    mass_[u] = saved.mass[k];
    count_[u] = saved.count[k];
  }
  latest_ = saved.latest;
  timed_ = saved.timed;
}

void InterestState::grow(std::int64_t n_users) {
  if (n_users <= this->n_users()) return;
  sums_.resize(static_cast<std::size_t>(n_users * dim_), 0.0f);
  saved_in_.resize(static_cast<std::size_t>(n_users), 0);
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
  add_event(user, item, weight, t, false);
}

void InterestState::add_event(std::int64_t user, const float* item, float weight, double t,
                              bool in_place) {
  const bool known = user < n_users();
  if (weight == 0.0f) {  // adds nothing, and must not move the decay's reference (row_reference)
    if (!known) grow(user + 1);
    if (!timed_ || t > latest_) latest_ = t;
    timed_ = true;
    return;
  }
  float* const sum_row = known ? sums_.data() + user * dim_ : nullptr;
  double ref = known ? ref_[user] : 0.0;
  double mass = known ? mass_[user] : 0.0;
  const std::int64_t count = known ? count_[user] : 0;
  bool rebased = false;
  double shrink = 1.0;
  double f = weight;
  if (half_life_ > 0.0) {
    if (count == 0) {
      ref = t;
    } else if (t > ref + kRebaseHalfLives * half_life_) {
      rebased = true;
      shrink = decay(t - ref, half_life_);
      mass *= shrink;
      ref = t;
    }
    f *= decay(ref - t, half_life_);
  }
  const float a = static_cast<float>(f);
  // The updated sum goes to `next`: the sum itself in place, else a copy made by the same
  // operations, committed only if finite.
  float* next = in_place ? sum_row : scratch_.data();
  const float* from = sum_row;  // what a·item is added to: the sum, rescaled on a rebase
  if (!known) {
    std::fill(next, next + dim_, 0.0f);
    from = next;
  } else if (rebased) {
    if (next != sum_row) std::copy(sum_row, sum_row + dim_, next);
    scale(static_cast<float>(shrink), next, dim_);
    from = next;
  }
  if (a == 0.0f) {
    if (from != next) std::copy(from, from + dim_, next);
  } else if (from == next) {
    mass += std::fabs(f) * std::sqrt(axpy_norm(a, item, next, dim_));
  } else {
    mass += std::fabs(f) * std::sqrt(axpy_norm_into(a, item, from, next, dim_));
  }
  if (!in_place) {
    if (!all_finite(next, dim_)) {
      throw SumOverflow(user, overflow_peak(sum_row, shrink, f, item, dim_));
    }
    if (!known) grow(user + 1);
    std::copy(next, next + dim_, sums_.data() + user * dim_);
  }
  ref_[user] = ref;
  mass_[user] = mass;
  count_[user] = count + 1;
  if (!timed_ || t > latest_) latest_ = t;
  timed_ = true;
}

template <class Time>
void InterestState::add_many(MatrixView items, std::int64_t n, const std::int64_t* users,
                             const std::int32_t* ids, const float* weights, const Time* times,
                             const StopCheck& stop, std::span<const std::int64_t> cleared,
                             double item_norm) {
  if (items.cols != dim_) throw std::invalid_argument("items must have the state's dimension");
  std::int64_t rows = n_users();
  double added = 0.0, largest = 0.0;  // Σ |weight|, and the largest mass of the users named
  for (std::int64_t k = 0; k < n; ++k) {
    if (users[k] < 0 || ids[k] < 0 || ids[k] >= items.rows) {
      throw std::out_of_range("event " + std::to_string(k) + ": user or item id out of range");
    }
    rows = std::max(rows, users[k] + 1);
    added += weights != nullptr ? std::fabs(static_cast<double>(weights[k])) : 1.0;
    if (users[k] < n_users()) largest = std::max(largest, mass_[users[k]]);
  }
  for (const std::int64_t u : cleared) {
    if (u < 0 || u >= n_users()) throw std::out_of_range("cleared user id out of range");
  }
  // A user's mass bounds its sum's norm, and an event adds at most |weight| · 2^16 (the largest
  // decay factor) · item_norm to it: when even all the events on the heaviest user stay far
  // from float's range, none can overflow, and the events go straight into the sums. Otherwise
  // every changed user is saved first, and the events are checked one by one.
  const double factor = half_life_ > 0.0 ? std::exp2(kRebaseHalfLives) : 1.0;
  const bool checked = !(largest + added * factor * item_norm < kSafeSum);
  const double now = latest_;
  if (!checked) {
    grow(rows);
    reset(cleared.data(), static_cast<std::int64_t>(cleared.size()));
    for (std::int64_t k = 0; k < n; ++k) {
      if ((k & 0xffff) == 0 && k > 0 && stop && stop()) throw Interrupted();
      if (k + 2 < n) {  // random rows: touch their first line early (whole rows measured slower)
        __builtin_prefetch(sum(users[k + 2]));
        __builtin_prefetch(items.row(ids[k + 2]));
      }
      add_event(users[k], items.row(ids[k]), weights ? weights[k] : 1.0f,
                times ? static_cast<double>(times[k]) : now, true);
    }
    return;
  }
  // Each existing user is saved before its first change (at its first event, or its reset),
  // while its row is in cache for the change anyway.
  Saved saved = begin_saving();
  const auto save_once = [&](std::int64_t u) {
    if (u >= saved.n_users || saved_in_[u] == call_) return;
    saved_in_[u] = call_;
    save(saved, u);
  };
  try {
    for (const std::int64_t u : cleared) save_once(u);
    grow(rows);
    reset(cleared.data(), static_cast<std::int64_t>(cleared.size()));
    for (std::int64_t k = 0; k < n; ++k) {
      if ((k & 0xffff) == 0 && k > 0 && stop && stop()) throw Interrupted();
      save_once(users[k]);
      add_event(users[k], items.row(ids[k]), weights ? weights[k] : 1.0f,
                times ? static_cast<double>(times[k]) : now, false);
    }
  } catch (...) {
    restore(saved);
    throw;
  }
}

template void InterestState::add_many<std::int64_t>(MatrixView, std::int64_t, const std::int64_t*,
                                                    const std::int32_t*, const float*,
                                                    const std::int64_t*, const StopCheck&,
                                                    std::span<const std::int64_t>, double);
template void InterestState::add_many<double>(MatrixView, std::int64_t, const std::int64_t*,
                                              const std::int32_t*, const float*, const double*,
                                              const StopCheck&, std::span<const std::int64_t>,
                                              double);

bool InterestState::merge(std::int64_t user, const float* partial, double ref, double mass,
                          std::int64_t count, float* next) {
  if (count == 0) return true;
  const float* sum = sums_.data() + user * dim_;
  std::copy(sum, sum + dim_, next);  // the same operations as in place, committed if finite
  double sum_ref = ref_[user], sum_mass = mass_[user];
  if (half_life_ > 0.0 && count_[user] == 0) {
    sum_ref = ref;
  } else if (half_life_ > 0.0 && ref > sum_ref) {
    const double shrink = decay(ref - sum_ref, half_life_);
    scale(static_cast<float>(shrink), next, dim_);
    sum_mass *= shrink;
    sum_ref = ref;
  }
  const double f = half_life_ > 0.0 ? decay(sum_ref - ref, half_life_) : 1.0;
  axpy(static_cast<float>(f), partial, next, dim_);
  if (!all_finite(next, dim_)) return false;
  std::copy(next, next + dim_, sums_.data() + user * dim_);
  ref_[user] = sum_ref;
  mass_[user] = sum_mass + f * mass;
  count_[user] += count;
  return true;
}

template <class Time>
void InterestState::add_rows(InterestEvents<Time> events, MatrixView items, std::int64_t first_user,
                             int num_threads, const StopCheck& stop) {
  check_events(events, half_life_);
  if (items.cols != dim_) throw std::invalid_argument("items must have the state's dimension");
  const std::int64_t rows = events.csr.rows;
  if (first_user < 0) throw std::out_of_range("first_user must be >= 0");
  Saved saved = begin_saving();  // each row is its own user: saved without marks
  for (std::int64_t u = first_user; u < std::min(first_user + rows, n_users()); ++u) {
    if (events.csr.indptr[u - first_user + 1] > events.csr.indptr[u - first_user]) save(saved, u);
  }
  const std::int64_t n_tasks = (rows + kUsersPerTask - 1) / kUsersPerTask;
  std::vector<double> task_latest(static_cast<std::size_t>(n_tasks),
                                  -std::numeric_limits<double>::infinity());
  // Each task's first row that would overflow (rows when none): the lowest is reported, so
  // the error does not depend on the thread count either.
  std::vector<std::int64_t> refused(static_cast<std::size_t>(n_tasks), rows);
  try {
    grow(first_user + rows);
    parallel_tasks(n_tasks, useful_threads(num_threads, n_tasks), stop, [&](std::int64_t task) {
      std::vector<float> partial(static_cast<std::size_t>(dim_));
      std::vector<float> next(static_cast<std::size_t>(dim_));
      const std::int64_t end = std::min(rows, (task + 1) * kUsersPerTask);
      for (std::int64_t r = task * kUsersPerTask; r < end; ++r) {
        const std::int64_t begin = events.csr.indptr[r], stop_at = events.csr.indptr[r + 1];
        if (begin == stop_at) continue;
        if (events.times != nullptr) {
          task_latest[task] = std::max(task_latest[task], row_latest(events, r));
        }
        // Events of weight 0 add nothing: they are not counted and set no reference.
        const std::int64_t count = std::count_if(events.weights + begin, events.weights + stop_at,
                                                 [](float w) { return w != 0.0f; });
        if (count == 0) continue;
        const double ref = events.times != nullptr ? row_reference(events, r) : 0.0;
        std::fill(partial.begin(), partial.end(), 0.0f);
        const double mass = accumulate_row(events, r, items, half_life_, ref, partial.data());
        if (!merge(first_user + r, partial.data(), ref, mass, count, next.data())) {
          refused[task] = r;
          return;
        }
      }
    });
    const auto first_refused = std::min_element(refused.begin(), refused.end());
    if (first_refused != refused.end() && *first_refused < rows) {
      const std::int64_t r = *first_refused;
      const std::int64_t u = first_user + r;
      throw SumOverflow(
          u, row_overflow_peak(events, r, items, half_life_, sum(u), count_[u] > 0, ref_[u]));
    }
  } catch (...) {
    restore(saved);
    throw;
  }
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
