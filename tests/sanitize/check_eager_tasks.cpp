// run_eager_tasks: every task runs exactly once whoever runs it, errors and stops reach the
// caller, and the helpers survive both (and streams of calls) for the next call.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "semrec/eager_tasks.hpp"

namespace checks {

void check_eager_tasks(Rng&) {
  for (int threads : {1, 2, 4}) {
    for (std::int64_t n : {0, 1, 2, 7, 64}) {
      for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n));
        semrec::run_eager_tasks(n, threads, {}, nullptr, [&](std::int64_t t) { ++runs[t]; });
        bool once = true;
        for (const auto& r : runs) once = once && r.load() == 1;
        EXPECT(once,
               "every task once: threads=" + std::to_string(threads) + " n=" + std::to_string(n));
      }
    }
  }

  // A task that throws, on whichever thread runs it: the first error is rethrown.
  for (int round = 0; round < 20; ++round) {
    EXPECT_THROWS(std::out_of_range,
                  semrec::run_eager_tasks(16, 2, {}, nullptr,
                                          [](std::int64_t t) {
                                            if (t == 5) throw std::out_of_range("task 5");
                                          }),
                  "a task's exception reaches the caller");
  }

  // A stop request ends the call with Interrupted; tasks after it are not started. A helper's
  // tasks wait (up to a second) for the request: on a loaded machine a helper once ran all
  // 1000 while the caller, between its polls, was off the CPU.
  std::atomic<int> started{0};
  std::atomic<int> polls{0};
  const std::thread::id caller = std::this_thread::get_id();
  auto task = [&](std::int64_t) {
    ++started;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::this_thread::get_id() != caller && polls.load() <= 3 &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
  };
  EXPECT_THROWS(semrec::Interrupted,
                semrec::run_eager_tasks(
                    1000, 2, [&] { return ++polls > 3; }, nullptr, task),
                "a stop request interrupts");
  EXPECT(started.load() < 1000, "tasks stop being claimed after a stop request");

  // Several callers at once: one gets the helpers, the others run alone; all complete.
  std::vector<std::thread> callers;
  std::atomic<long> total{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 50; ++round) {
        semrec::run_eager_tasks(9, 2, {}, nullptr, [&](std::int64_t t) { total += t + 1; });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT(total.load() == 4L * 50 * 45, "concurrent callers each run all their tasks");

  // The wake-up hint, with and without a call after it.
  semrec::wake_eager_helpers(2);
  std::atomic<int> after_hint{0};
  semrec::run_eager_tasks(8, 2, {}, nullptr, [&](std::int64_t) { ++after_hint; });
  EXPECT(after_hint.load() == 8, "a call after the wake-up hint runs every task");
  semrec::wake_eager_helpers(2);
  semrec::wake_eager_helpers(1);

  // A stream (calls over the same data back to back: the helpers wait awake in between),
  // interleaved with other data, wake-up hints and a concurrent caller.
  static const int catalogue = 0, other = 0;
  std::atomic<long> streamed{0};
  std::thread beside([&] {
    for (int round = 0; round < 100; ++round) {
      semrec::run_eager_tasks(5, 2, {}, &other, [&](std::int64_t t) { streamed += t + 1; });
    }
  });
  for (int round = 0; round < 300; ++round) {
    if (round % 7 == 0) semrec::wake_eager_helpers(2);
    const void* data = round % 50 == 49 ? static_cast<const void*>(&other) : &catalogue;
    semrec::run_eager_tasks(8, 2, {}, data, [&](std::int64_t t) { streamed += t + 1; });
  }
  beside.join();
  EXPECT(streamed.load() == 300L * 36 + 100L * 15, "a stream of calls runs every task once");
}

}  // namespace checks
