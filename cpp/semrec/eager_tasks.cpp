#include "semrec/eager_tasks.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace semrec {
namespace {

// One call's tasks. It lives on the caller's stack: a helper touches it only while counted in
// Pool::inside_, and the caller returns only once that count is back to zero.
struct Job {
  const std::function<void(std::int64_t)>* fn = nullptr;
  std::int64_t n = 0;
  std::atomic<std::int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;

  // Claims and runs tasks until none is left; true if `stop` asked to stop (caller only).
  // Never throws: an error (of a task or of stop) is kept for the caller and ends the claims.
  bool work(const StopCheck* stop) noexcept {
    try {
      for (;;) {
        if (stop != nullptr && *stop && (*stop)()) {
          next.store(n, std::memory_order_relaxed);
          return true;
        }
        const std::int64_t task = next.fetch_add(1, std::memory_order_relaxed);
        if (task >= n) return false;
        (*fn)(task);
      }
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      next.store(n, std::memory_order_relaxed);  // the others stop claiming
      return false;
    }
  }
};

// How long a helper woken ahead of a job (wake) waits for it awake before sleeping again: the
// caller's own work in between (a click's Python layer) takes tens of microseconds.
constexpr std::chrono::microseconds kAwake{300};
// A job over the same data as the previous one, starting this soon after its end, is one of a
// stream (clicks back to back): its helpers then wait up to kAwake for the next job before
// sleeping, since the call that wakes a sleeping thread costs the caller ~40 us in a virtual
// machine. They yield the core while they wait, so that work of other threads runs then rather
// than preempting a helper in the middle of a task (the caller waits for it: without the
// yield, up to 4 ms a click at the 99th percentile). After other work (another catalogue, a
// longer gap) they sleep at once: that work's own threads may want the cores.
constexpr std::chrono::microseconds kStream{500};

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

class Pool {
 public:
  // The process's pool. A child process after fork() has the parent's pool but none of its
  // threads (and maybe a mutex a parent thread held): it starts a new one, leaking the old.
  static Pool& get() {
    static const bool registered = [] {
      pthread_atfork(nullptr, nullptr, [] { current().store(nullptr); });
      return true;
    }();
    (void)registered;
    Pool* pool = current().load();
    if (pool == nullptr) {
      auto* fresh = new Pool();  // never deleted: detached helpers use it until the process ends
      if (current().compare_exchange_strong(pool, fresh)) {
        pool = fresh;
      } else {
        delete fresh;
      }
    }
    return *pool;
  }

  // Wakes up to `helpers` helpers now; they wait for a job a short while before sleeping.
  void wake(int helpers) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (busy.owns_lock()) publish(nullptr, helpers, false);
  }

  // Runs `job` on the calling thread (caller_work) with up to `helpers` helpers; false, with
  // nothing run, when another call holds the pool.
  template <class CallerWork>
  bool try_run(Job& job, const void* data, int helpers, CallerWork&& caller_work) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    const bool stream = data != nullptr && data == last_data_ &&
                        std::chrono::steady_clock::now() - last_end_ < kStream;
    publish(&job, helpers, stream);
    caller_work();
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = nullptr;  // a helper waking from now on finds nothing to join
    }
    // Helpers still inside are finishing the task they claimed: wait for them.
    for (int spin = 0; inside_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 4096) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
    last_end_ = std::chrono::steady_clock::now();
    last_data_ = data;
    return true;
  }

 private:
  static std::atomic<Pool*>& current() {
    static std::atomic<Pool*> pool{nullptr};
    return pool;
  }

  // Offers `job` (none: a wake-up call, the job follows) to up to `helpers` helpers, started if
  // need be, and wakes them (under busy_).
  void publish(Job* job, int helpers, bool stream) {
    helpers = start(helpers);
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = job;
      expecting_ = job == nullptr;
      stream_ = stream;
      invited_ = helpers;
      published_.store(++epoch_, std::memory_order_release);
    }
    if (helpers > 0) wake_.notify_all();
  }

  // Starts helpers up to `wanted` (under busy_); returns how many there are, at most wanted.
  int start(int wanted) {
    while (started_ < wanted) {
      // Helpers never take signals: Python's handlers belong to the main thread.
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, &old);
      try {
        std::thread(&Pool::loop, this, started_).detach();
        ++started_;
      } catch (const std::system_error&) {
        wanted = started_;  // no more threads allowed: run with those there are
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    return std::min(started_, wanted);
  }

  void loop(int index) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      wake_.wait(lock, [&] { return epoch_ != seen; });
      seen = epoch_;
      if (index >= invited_) continue;
      if (job_ == nullptr) {
        if (!expecting_) continue;  // woken for a job that finished without this helper
        // A wake-up call: the job follows soon; wait for it awake, for a while.
        lock.unlock();
        await_next(seen);
        lock.lock();
        continue;
      }
      Job* job = job_;
      const bool stream = stream_;
      inside_.fetch_add(1, std::memory_order_relaxed);  // under m_, before the job can close
      lock.unlock();
      job->work(nullptr);
      inside_.fetch_sub(1, std::memory_order_release);
      if (stream) await_next(seen, true);  // the next job of the stream is likely near
      lock.lock();
    }
  }

  // Spins (pausing, and yielding the core if `yielding`) until a job or wake-up call after
  // epoch `seen` is published, or for kAwake.
  void await_next(std::uint64_t seen, bool yielding = false) const {
    const auto until = std::chrono::steady_clock::now() + kAwake;
    while (published_.load(std::memory_order_acquire) == seen &&
           std::chrono::steady_clock::now() < until) {
      for (int i = 0; i < 16; ++i) cpu_relax();
      if (yielding) std::this_thread::yield();
    }
  }

  std::mutex busy_;                                   // held by the one call using the helpers
  int started_ = 0;                                   // guarded by busy_
  std::chrono::steady_clock::time_point last_end_{};  // guarded by busy_: the last job's end
  const void* last_data_ = nullptr;                   // guarded by busy_: and what it scanned
  std::mutex m_;
  std::condition_variable wake_;
  std::uint64_t epoch_ = 0;  // guarded by m_: bumped for every job
  Job* job_ = nullptr;       // guarded by m_: the job helpers may join, or none
  bool expecting_ = false;   // guarded by m_: woken ahead of a job (wake)
  bool stream_ = false;      // guarded by m_: the job is one of a stream (kStream)
  int invited_ = 0;          // guarded by m_: helpers with a smaller index may join it
  std::atomic<int> inside_{0};
  std::atomic<std::uint64_t> published_{0};  // epoch_, readable without m_
};

}  // namespace

void wake_eager_helpers(int num_threads) {
  const int helpers = usable_threads(num_threads) - 1;
  if (helpers > 0) Pool::get().wake(helpers);
}

void run_eager_tasks(std::int64_t n_tasks, int num_threads, const StopCheck& stop, const void* data,
                     const std::function<void(std::int64_t)>& fn) {
  if (n_tasks <= 0) return;
  const auto helpers =
      static_cast<int>(std::min<std::int64_t>(usable_threads(num_threads) - 1, n_tasks - 1));
  Job job;
  job.fn = &fn;
  job.n = n_tasks;
  bool interrupted = false;
  auto caller_work = [&] { interrupted = job.work(&stop); };
  if (helpers < 1 || !Pool::get().try_run(job, data, helpers, caller_work)) caller_work();
  if (job.error) std::rethrow_exception(job.error);
  if (interrupted) throw Interrupted();
}

}  // namespace semrec
