// semrec::interest_profiles and InterestState against decayed sums computed in double here.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "semrec/interest.hpp"

namespace checks {

namespace {

// normalise(Σ w · 0.5^((t_max − t) / half_life) · e) per row; zero for an empty row.
template <class Time>
std::vector<double> reference(const Csr& events, const std::vector<Time>& times,
                              const std::vector<float>& items, std::int64_t dim, double half_life,
                              std::int64_t row) {
  std::vector<double> sum(static_cast<std::size_t>(dim), 0.0);
  double newest = -INFINITY;
  for (std::int64_t p = events.indptr[row]; p < events.indptr[row + 1]; ++p) {
    newest = std::max(newest, static_cast<double>(times[p]));
  }
  for (std::int64_t p = events.indptr[row]; p < events.indptr[row + 1]; ++p) {
    double f = events.values[p];
    if (half_life > 0.0) f *= std::exp2(-(newest - static_cast<double>(times[p])) / half_life);
    for (std::int64_t d = 0; d < dim; ++d) sum[d] += f * items[events.indices[p] * dim + d];
  }
  double norm = 0.0;
  for (double v : sum) norm += v * v;
  norm = std::sqrt(norm);
  for (double& v : sum) v = norm > 0.0 ? v / norm : 0.0;
  return sum;
}

bool rows_match(const float* got, const std::vector<double>& want, double tol) {
  for (std::size_t d = 0; d < want.size(); ++d) {
    if (!near(got[d], want[d], tol)) return false;
  }
  return true;
}

template <class Time>
void profiles_case(Rng& rng, std::int64_t users, std::int64_t n_items, std::int64_t dim,
                   double half_life, Time spread) {
  Csr events = random_csr(rng, users, n_items, 0.15, 0.1f, 5.0f);
  std::vector<Time> times(events.indices.size());
  times.reserve(1);  // non-null even when empty
  std::uniform_real_distribution<double> when(0.0, static_cast<double>(spread));
  for (Time& t : times) t = static_cast<Time>(when(rng));
  const std::vector<float> items = random_matrix(rng, n_items, dim);
  const semrec::InterestEvents<Time> ev{events.view(), events.values.data(), times.data()};
  std::vector<float> out(static_cast<std::size_t>(users * dim), 7.0f);
  semrec::interest_profiles(ev, view(items, n_items, dim), half_life, 2, out.data());

  // The same events streamed one at a time, in a shuffled order, into an InterestState.
  semrec::InterestState state(dim, half_life);
  state.grow(users);
  std::vector<std::int64_t> order(events.indices.size()), who(events.indices.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (std::int64_t u = 0; u < users; ++u) {
    for (std::int64_t p = events.indptr[u]; p < events.indptr[u + 1]; ++p) who[p] = u;
  }
  std::vector<std::int64_t> ev_users;
  std::vector<std::int32_t> ev_items;
  std::vector<float> ev_weights;
  std::vector<Time> ev_times;
  for (std::int64_t p : order) {
    ev_users.push_back(who[p]);
    ev_items.push_back(events.indices[p]);
    ev_weights.push_back(events.values[p]);
    ev_times.push_back(times[p]);
  }
  const auto n_events = static_cast<std::int64_t>(order.size());
  state.add_many(view(items, n_items, dim), n_events, ev_users.data(), ev_items.data(),
                 ev_weights.data(), ev_times.data());
  std::vector<std::int64_t> all(static_cast<std::size_t>(users));
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> streamed(out.size(), 7.0f);
  state.profiles(all.data(), users, 2, streamed.data());

  // And as whole rows merged into a second state.
  semrec::InterestState rows_state(dim, half_life);
  rows_state.grow(users);
  rows_state.add_rows(ev, view(items, n_items, dim), 0, 2);
  std::vector<float> merged(out.size(), 7.0f);
  rows_state.profiles(all.data(), users, 2, merged.data());

  const std::string label = "interest users=" + std::to_string(users) +
                            " dim=" + std::to_string(dim) +
                            " half_life=" + std::to_string(half_life);
  bool batch_ok = true, stream_ok = true, rows_ok = true;
  for (std::int64_t u = 0; u < users; ++u) {
    const auto want = reference(events, times, items, dim, half_life, u);
    batch_ok = batch_ok && rows_match(out.data() + u * dim, want, 1e-4);
    stream_ok = stream_ok && rows_match(streamed.data() + u * dim, want, 1e-4);
    rows_ok = rows_ok && rows_match(merged.data() + u * dim, want, 1e-4);
  }
  EXPECT(batch_ok, label + ": interest_profiles equals the decayed normalised sum");
  EXPECT(stream_ok, label + ": InterestState.add_many (shuffled) equals it too");
  EXPECT(rows_ok, label + ": InterestState.add_rows equals it too");

  if (users > 0) {
    const std::int64_t first = 0;
    state.reset(&first, 1);
    std::vector<float> reset(static_cast<std::size_t>(dim), 7.0f);
    state.profiles(&first, 1, 1, reset.data());
    EXPECT(std::all_of(reset.begin(), reset.end(), [](float v) { return v == 0.0f; }),
           label + ": a reset user's profile is zero");
  }
}

// Every user's (sum, reference time, mass, count), and the state's size and clock.
struct Snapshot {
  std::vector<float> sums;
  std::vector<double> numbers;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const semrec::InterestState& s) {
  Snapshot out;
  for (std::int64_t u = 0; u < s.n_users(); ++u) {
    out.sums.insert(out.sums.end(), s.sum(u), s.sum(u) + s.dim());
    out.numbers.insert(out.numbers.end(),
                       {s.reference_time(u), s.mass(u), static_cast<double>(s.count(u))});
  }
  out.numbers.insert(out.numbers.end(), {static_cast<double>(s.n_users()), s.latest()});
  return out;
}

// add_many and add_rows are all or nothing: a batch with one event (or row) that overflows
// leaves the state as it was, users it would have created and users it would have reset
// included. add_many goes straight into the sums when item_norm shows that nothing can
// overflow, and checks every event otherwise: both give the same bits.
void batch_refusals(Rng& rng) {
  for (double half_life : {0.0, 30.0}) {
    const std::string label = "batch refusal, half_life=" + std::to_string(half_life);
    const std::int64_t dim = 5, n_items = 6, n = 200;
    std::vector<float> items = unit_rows(random_matrix(rng, n_items, dim), n_items, dim);
    std::vector<std::int64_t> users(n);
    std::vector<std::int32_t> ids(n);
    std::vector<float> weights(n);
    std::vector<double> times(n);
    std::uniform_int_distribution<std::int64_t> who(0, 9);
    std::uniform_real_distribution<double> when(0.0, 2000.0);
    for (std::int64_t k = 0; k < n; ++k) {
      users[k] = who(rng);
      ids[k] = static_cast<std::int32_t>(k % n_items);
      weights[k] = std::normal_distribution<float>(0.0f, 3.0f)(rng);
      times[k] = when(rng);
    }
    const auto x = view(items, n_items, dim);
    semrec::InterestState fast(dim, half_life), checked(dim, half_life);
    fast.add_many(x, n, users.data(), ids.data(), weights.data(), times.data(), {}, {}, 1.0);
    checked.add_many(x, n, users.data(), ids.data(), weights.data(), times.data());
    EXPECT(snapshot(fast) == snapshot(checked), label + ": add_many unchecked == checked");

    // Ordinary events, one on a new user, a reset user, then events that overflow user 4's sum
    // (four times 3.4e38 along a unit vector: one component is at least 1/sqrt(5) of it).
    const Snapshot before = snapshot(checked);
    const std::int64_t more_users[] = {3, 12, 4, 4, 4, 4};
    const std::int32_t more_ids[] = {0, 1, 2, 2, 2, 2};
    const float more_weights[] = {1.0f, 2.0f, 3.4e38f, 3.4e38f, 3.4e38f, 3.4e38f};
    const std::vector<double> more_times(6, 2000.0);
    const std::int64_t cleared[] = {7};
    bool refused_user_4 = false;
    try {
      checked.add_many(x, 6, more_users, more_ids, more_weights, more_times.data(), {}, cleared,
                       1.0);
    } catch (const semrec::SumOverflow& e) {
      refused_user_4 = e.user() == 4 && e.peak() > 3.4e38;
    }
    EXPECT(refused_user_4, label + ": add_many reports the event's user and its peak");
    EXPECT(snapshot(checked) == before, label + ": a refused add_many changes nothing");

    // add_rows from user 8 (8 and 9 exist, the rest would be new): rows 1 and 70 (two tasks of
    // 64 rows) overflow the same way, and user 8 + 1 is named.
    Csr rows;
    rows.rows = 100;
    rows.cols = n_items;
    rows.indptr = {0};
    for (std::int64_t r = 0; r < rows.rows; ++r) {
      const bool huge = r == 1 || r == 70;
      for (int e = 0; e < 4; ++e) {
        rows.indices.push_back(huge ? 0 : static_cast<std::int32_t>((r + e) % n_items));
        rows.values.push_back(huge ? 3.4e38f : 1.0f);
      }
      rows.indptr.push_back(static_cast<std::int64_t>(rows.indices.size()));
    }
    const std::vector<double> row_times(rows.values.size(), 1000.0);
    const semrec::InterestEvents<double> ev{rows.view(), rows.values.data(), row_times.data()};
    std::int64_t named = -1;
    try {
      checked.add_rows(ev, x, 8, 2);
    } catch (const semrec::SumOverflow& e) {
      named = e.user();
    }
    EXPECT(named == 9, label + ": add_rows names the lowest user that overflows");
    EXPECT(snapshot(checked) == before, label + ": a refused add_rows changes nothing");
  }
}

}  // namespace

void check_interest(Rng& rng) {
  for (double half_life : {0.0, 50.0}) {
    profiles_case<std::int64_t>(rng, 0, 5, 3, half_life, 100);
    profiles_case<std::int64_t>(rng, 1, 1, 1, half_life, 100);
    profiles_case<std::int64_t>(rng, 70, 40, 8, half_life, 1000);
    profiles_case<double>(rng, 130, 90, 67, half_life, 300.0);  // two tasks, odd width
    profiles_case<std::int64_t>(rng, 20, 30, 130, half_life, 1'000'000'000'000LL);  // far apart
  }

  // A history that cancels out has a zero profile, not noise blown up to unit length.
  Csr cancel;
  cancel.rows = 1;
  cancel.cols = 1;
  cancel.indptr = {0, 2};
  cancel.indices = {0, 0};
  cancel.values = {1.0f, -1.0f};
  const std::vector<float> item{0.3f, -0.4f};
  const std::vector<std::int64_t> t{5, 5};
  std::vector<float> out(2, 7.0f);
  semrec::interest_profiles(
      semrec::InterestEvents<std::int64_t>{cancel.view(), cancel.values.data(), t.data()},
      view(item, 1, 2), 10.0, 1, out.data());
  EXPECT(out[0] == 0.0f && out[1] == 0.0f, "interest: cancelled history gives a zero profile");

  // Items whose float squares overflow (entries past ~1.8e19) still give their direction.
  Csr huge = random_csr(rng, 3, 4, 1.0, 0.5f, 2.0f);
  std::vector<float> huge_items = random_matrix(rng, 4, 64);
  for (std::int64_t d = 0; d < 64; ++d) huge_items[64 + d] *= 1e21f;
  const std::vector<std::int64_t> huge_t(huge.indices.size(), 0);
  std::vector<float> huge_out(3 * 64, 7.0f);
  semrec::interest_profiles(
      semrec::InterestEvents<std::int64_t>{huge.view(), huge.values.data(), huge_t.data()},
      view(huge_items, 4, 64), 0.0, 2, huge_out.data());
  bool huge_ok = true;
  for (std::int64_t u = 0; u < 3; ++u) {
    huge_ok = huge_ok && rows_match(huge_out.data() + u * 64,
                                    reference(huge, huge_t, huge_items, 64, 0.0, u), 1e-5);
  }
  EXPECT(huge_ok, "interest: items past float's squared range keep their direction");

  const std::vector<float> items = random_matrix(rng, 3, 4);
  Csr bad = random_csr(rng, 2, 3, 1.0, 1.0f, 2.0f);
  bad.indices[1] = 3;
  std::vector<float> out2(8);
  EXPECT_THROWS(std::out_of_range,
                semrec::interest_profiles(
                    semrec::InterestEvents<double>{bad.view(), bad.values.data(), nullptr},
                    view(items, 3, 4), 0.0, 1, out2.data()),
                "interest_profiles item out of range");
  EXPECT_THROWS(std::invalid_argument,
                semrec::interest_profiles(
                    semrec::InterestEvents<double>{bad.view(), bad.values.data(), nullptr},
                    view(items, 3, 4), 5.0, 1, out2.data()),
                "interest_profiles decay without timestamps");
  EXPECT_THROWS(std::invalid_argument, semrec::InterestState(0, 1.0), "InterestState dim=0");
  EXPECT_THROWS(std::invalid_argument, semrec::InterestState(3, INFINITY),
                "InterestState infinite half_life");
  semrec::InterestState state(4, 0.0);
  state.grow(2);
  const std::int64_t users[] = {0, 2};
  const std::int32_t ids[] = {0, 1};
  const std::int64_t negative[] = {0, -1};
  const std::int32_t past[] = {0, 3};
  EXPECT_THROWS(std::out_of_range,
                state.add_many<double>(view(items, 3, 4), 2, negative, ids, nullptr, nullptr),
                "InterestState.add_many negative user");
  EXPECT_THROWS(std::out_of_range,
                state.add_many<double>(view(items, 3, 4), 2, users, past, nullptr, nullptr),
                "InterestState.add_many item out of range");
  EXPECT(state.n_users() == 2 && state.count(0) == 0, "InterestState.add_many bad ids: no change");
  EXPECT_THROWS(std::out_of_range, state.profiles(users, 2, 1, out2.data()),
                "InterestState.profiles user out of range");
  EXPECT_THROWS(std::out_of_range, state.reset(users, 2), "InterestState.reset user out of range");

  // An event that would take a sum past float's range is refused (SumOverflow) and changes
  // nothing: not the sum, its reference time, mass or count, not the clock, no new user. With
  // decay, t = 20 takes the rebase path (the sum shrunk to a new reference time) first.
  for (double half_life : {0.0, 1.0}) {
    const std::vector<float> unit{1.0f, 0.0f, 0.6f, 0.8f};
    const float* along_x = unit.data();
    const float* slanted = unit.data() + 2;
    semrec::InterestState s(2, half_life);
    s.add(0, along_x, 3e38f, 0.0);
    const std::vector<float> sum(s.sum(0), s.sum(0) + 2);
    const double ref = s.reference_time(0), mass = s.mass(0);
    const std::string label = "InterestState.add refused, half_life=" + std::to_string(half_life);
    double peak = 0.0;
    try {
      s.add(0, slanted, 3e38f, 0.0);
    } catch (const semrec::SumOverflow& e) {
      peak = e.user() == 0 ? e.peak() : 0.0;
    }
    EXPECT(near(peak, 4.8e38, 1e-6), label + ": reports user 0 and the sum it would reach");
    EXPECT_THROWS(semrec::SumOverflow, s.add(0, along_x, 3.4028235e38f, 20.0), label + ", t=20");
    EXPECT_THROWS(semrec::SumOverflow, s.add(3, along_x, INFINITY, 0.0), label + ", new user");
    EXPECT(std::equal(sum.begin(), sum.end(), s.sum(0)) && s.reference_time(0) == ref &&
               s.mass(0) == mass && s.count(0) == 1 && s.n_users() == 1 && s.latest() == 0.0,
           label + ": the state is as it was");
    s.add(2, slanted, 1.0f, 5.0);  // a new user with an ordinary event is created
    EXPECT(s.n_users() == 3 && s.count(2) == 1 && s.count(1) == 0 && s.latest() == 5.0,
           label + ": an accepted event creates its user");
  }
  batch_refusals(rng);
}

}  // namespace checks
