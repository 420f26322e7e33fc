// User-interest aggregation: each user's profile is the L2-normalised, weighted and time-decayed
// sum of the embeddings of the items in their history,
//   profile_u = normalise( Σ_i w_ui · 0.5^((t_now − t_ui) / half_life) · e_i ).
// Every decay factor shares 0.5^(t_now / half_life), so the direction does not depend on t_now:
// sums are kept relative to a per-user reference time instead, which keeps them finite however
// far apart the timestamps are. A profile is zero when the history is empty or cancels out.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <vector>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

// Interactions as a CSR (rows are users) with one weight and, optionally, one timestamp per
// stored entry. Indices need not be sorted; duplicates are separate events.
template <class Time>
struct InterestEvents {
  CsrView csr;
  const float* weights = nullptr;
  const Time* times = nullptr;  // null: no timestamps (only allowed without decay)
};

// Normalised profiles of every row of `events` into `out` (events.csr.rows x items.cols).
// half_life <= 0 means no decay. Parallel over users; each row depends only on its own entries,
// so the result is identical for any thread count. Time is std::int64_t or double.
template <class Time>
void interest_profiles(InterestEvents<Time> events, MatrixView items, double half_life,
                       int num_threads, float* out, const StopCheck& stop = {});

// Thrown when an event would take a user's sum past float's range (the sums are float32): the
// event is refused and the state is as it was. `peak` is the largest magnitude the sum would
// have reached, computed in double; infinity when even that overflows or only the float event
// factor did.
class SumOverflow : public std::overflow_error {
 public:
  SumOverflow(std::int64_t user, double peak)
      : std::overflow_error("an event would take a profile sum past float's range"),
        user_(user),
        peak_(peak) {}
  std::int64_t user() const { return user_; }
  double peak() const { return peak_; }

 private:
  std::int64_t user_;
  double peak_;
};

// Streaming profiles: per-user decayed sums that absorb one event in O(dim), in any time order,
// and give the same direction as interest_profiles over the same events. Not thread-safe:
// one writer at a time.
class InterestState {
 public:
  InterestState(std::int64_t dim, double half_life);

  std::int64_t dim() const { return dim_; }
  std::int64_t n_users() const { return static_cast<std::int64_t>(count_.size()); }
  double half_life() const { return half_life_; }
  // The latest event time seen (0 before any timed event): "now" on the state's clock.
  double latest() const { return latest_; }

  // Grows to at least n_users users (new users have no events). Never shrinks (a failed
  // add_many or add_rows only gives back what it grew).
  void grow(std::int64_t n_users);
  // Forgets every event of these users.
  void reset(const std::int64_t* users, std::int64_t n);

  // One event: `item` points to the item's embedding (dim floats). A user >= n_users() is
  // created by it (the state grows). All or nothing: the updated sum is computed aside and
  // committed only when every value is finite, else SumOverflow (the state is unchanged).
  void add(std::int64_t user, const float* item, float weight, double t);
  // Events applied in order; ids index rows of `items`. weights/times may be null (1 / latest).
  // The users in `cleared` forget their history first (the events then replace it); users past
  // n_users() are created. All or nothing: an event that would overflow (SumOverflow) or an id
  // out of range leaves the state as it was. `item_norm` bounds the item rows' norms (infinity:
  // unknown): when it shows that no event can come near float's range, nothing is saved for a
  // rollback, and an interrupt keeps the events applied before it.
  template <class Time>
  void add_many(MatrixView items, std::int64_t n, const std::int64_t* users,
                const std::int32_t* ids, const float* weights, const Time* times,
                const StopCheck& stop = {}, std::span<const std::int64_t> cleared = {},
                double item_norm = std::numeric_limits<double>::infinity());
  // Row r of `events` is added to user first_user + r, created if need be (parallel over rows,
  // thread-count independent: each user is touched by one task). All or nothing like add_many;
  // of several rows that overflow, the SumOverflow names the lowest user.
  template <class Time>
  void add_rows(InterestEvents<Time> events, MatrixView items, std::int64_t first_user,
                int num_threads, const StopCheck& stop = {});

  // Normalised profiles of the listed users into out (n x dim).
  void profiles(const std::int64_t* users, std::int64_t n, int num_threads, float* out) const;

  // Raw state of one user: sum = Σ w·0.5^((ref − t)/half_life)·e, mass = Σ |w|·decay·‖e‖.
  const float* sum(std::int64_t user) const { return sums_.data() + user * dim_; }
  double reference_time(std::int64_t user) const { return ref_[user]; }
  double mass(std::int64_t user) const { return mass_[user]; }
  std::int64_t count(std::int64_t user) const { return count_[user]; }

 private:
  // One event, written aside and committed only if finite (else SumOverflow), or in_place
  // straight into the sum of an existing user (add_many, knowing it cannot overflow).
  void add_event(std::int64_t user, const float* item, float weight, double t, bool in_place);
  // What add_many / add_rows change, kept to put back if they fail: the state's size and clock
  // (begin_saving), and each existing user's state before its first change (save).
  struct Saved;
  Saved begin_saving();
  void save(Saved& saved, std::int64_t user) const;
  void restore(const Saved& saved);
  // Adds a partial sum held at time `ref` into the user's sum, computed in `next` (dim floats)
  // and committed only if finite; returns false (nothing changed) if not.
  bool merge(std::int64_t user, const float* partial, double ref, double mass, std::int64_t count,
             float* next);

  std::int64_t dim_;
  double half_life_;
  double latest_ = 0.0;
  bool timed_ = false;
  std::vector<float> sums_;
  std::vector<double> ref_;
  std::vector<double> mass_;
  std::vector<std::int64_t> count_;
  std::vector<float> scratch_;  // add's updated sum before it is committed
  // add_many saves a user at its first event of the call: the call's number marks it saved
  // (64 bits: it never wraps around).
  std::vector<std::uint64_t> saved_in_;
  std::uint64_t call_ = 0;
};

}  // namespace semrec
