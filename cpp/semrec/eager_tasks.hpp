// Latency-bound loops: the calling thread starts at once, helper threads join if they wake in
// time. For one query against a catalogue of a few megabytes (a click), where a fork/join's
// barrier would make the caller wait for a helper that a busy core has not scheduled yet.
#pragma once

#include <cstdint>
#include <functional>

#include "semrec/parallel.hpp"

namespace semrec {

// Runs fn(task) for every task in [0, n_tasks) on the calling thread and on up to
// num_threads - 1 helper threads. The caller claims tasks from the first one without waiting;
// a helper claims tasks only once it is awake. The caller returns when every task is done: it
// waits for a task a helper is running, never for a helper that has not claimed one, so this
// is never much slower than the caller alone. Tasks must be independent (the result may not
// depend on which thread ran which task). The helpers are OS threads of semrec's own, started
// on first use and asleep between calls, except within a stream of calls: one over the same
// `data` (what the tasks read, e.g. a catalogue; null: none) starting less than 0.5 ms after the
// previous one ended, as clicks back to back do. The helpers then wait up to 0.3 ms for the
// next call awake (spinning, yielding the core to any other thread), because waking a
// sleeping thread costs the caller tens of microseconds. While another call is using them (a
// second Python thread searching at the same time) the caller runs its tasks alone. An
// exception thrown by fn on any thread is rethrown here; stop is polled on the calling thread
// between tasks.
void run_eager_tasks(std::int64_t n_tasks, int num_threads, const StopCheck& stop, const void* data,
                     const std::function<void(std::int64_t)>& fn);

// A hint that a latency-bound run_eager_tasks call follows soon: wakes the helpers now (a
// sleeping thread takes tens of microseconds to wake, more in a virtual machine), and they
// wait for it awake for a short while before sleeping again.
void wake_eager_helpers(int num_threads);

}  // namespace semrec
