// Task-parallel loop shared by every kernel: OpenMP over independent tasks, with exceptions
// carried back to the caller and a cooperative stop (Ctrl-C) polled from the calling thread.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>

namespace semrec {

// Returns true when the caller wants the work abandoned. Only ever invoked on the thread that
// called the kernel (OpenMP thread 0), so a binding may consult interpreter state in it.
using StopCheck = std::function<bool()>;

// Thrown when a StopCheck asked to stop; the work's outputs are then unspecified.
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("semrec: interrupted") {}
};

// The thread count a kernel really starts: at least 1 (fewer is the caller's bug, reported),
// at most the processors OpenMP may use. More threads than processors never speed these
// kernels up, and a huge count would start (and allocate for) that many threads; this is the
// one cap, applied where the bindings receive a count and again by every parallel loop.
inline int usable_threads(long long requested) {
  if (requested < 1) throw std::invalid_argument("num_threads must be >= 1");
  return static_cast<int>(std::min<long long>(requested, std::max(1, omp_get_num_procs())));
}

// Runs fn(task) for task in [0, n_tasks) on num_threads threads. Tasks are scheduled
// dynamically, so fn must make each task's output independent of which thread runs it; that is
// what keeps every kernel's result identical for any thread count.
// No more threads than tasks: a team's other threads would only wait, and on a busy machine a
// one-task call (one user's scores) waited 8-24 ms for a sibling core to start them.
template <class Fn>
void parallel_tasks(std::int64_t n_tasks, int num_threads, const StopCheck& stop, Fn&& fn) {
  num_threads = static_cast<int>(
      std::min<std::int64_t>(usable_threads(num_threads), std::max<std::int64_t>(n_tasks, 1)));
  std::atomic<bool> abort{false};
  std::atomic<bool> interrupted{false};
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads) if (num_threads > 1)
  for (std::int64_t task = 0; task < n_tasks; ++task) {
    if (abort.load(std::memory_order_relaxed)) continue;
    try {
      if (stop && omp_get_thread_num() == 0 && stop()) {
        interrupted = true;
        abort = true;
        continue;
      }
      fn(task);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      abort = true;
    }
  }
  if (error) std::rethrow_exception(error);
  if (interrupted) throw Interrupted();
}

}  // namespace semrec
