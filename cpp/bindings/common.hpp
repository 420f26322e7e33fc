// Helpers shared by the binding files: array views, the Ctrl-C hook and GIL handling.
// Validation with user-facing messages lives in the Python layer; the checks here only keep a
// direct call of the private module from crashing.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec::bindings {

namespace py = pybind11;

template <class T>
using CArray = py::array_t<T, py::array::c_style>;

inline MatrixView matrix_view(const CArray<float>& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D");
  return {a.data(), a.shape(0), a.shape(1)};
}

// A CSR structure passed as (indptr int64, indices int32, n_cols); None means absent.
inline CsrView csr_view(const std::optional<CArray<std::int64_t>>& indptr,
                        const std::optional<CArray<std::int32_t>>& indices, std::int64_t cols,
                        const char* name) {
  if (!indptr || !indices) return {};
  if (indptr->ndim() != 1 || indices->ndim() != 1 || indptr->shape(0) < 1) {
    throw std::invalid_argument(std::string(name) + ": indptr and indices must be 1-D");
  }
  const std::int64_t rows = indptr->shape(0) - 1;
  if (indptr->data()[rows] != indices->shape(0) || indptr->data()[0] != 0) {
    throw std::invalid_argument(std::string(name) + ": indptr does not match indices");
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    if (indptr->data()[i + 1] < indptr->data()[i]) {
      throw std::invalid_argument(std::string(name) + ": indptr must be non-decreasing");
    }
  }
  return {indptr->data(), indices->data(), rows, cols};
}

// A CSR matrix with float values: its structure (as csr_view) and one value per entry.
inline CsrValuesView csr_values_view(const CArray<std::int64_t>& indptr,
                                     const CArray<std::int32_t>& indices,
                                     const CArray<float>& values, std::int64_t cols,
                                     const char* name) {
  const CsrView structure = csr_view(indptr, indices, cols, name);
  if (values.ndim() != 1 || values.shape(0) != indices.shape(0)) {
    throw std::invalid_argument(std::string(name) + ": values must be 1-D and match indices");
  }
  return {structure.indptr, structure.indices, values.data(), structure.rows, cols};
}

// num_threads as every binding receives it: any Python int, capped by usable_threads (so a
// direct call of the private module with an absurd count runs on the cores there are); 0 and
// negative counts reach the kernel, which rejects them. The Python layer has already resolved
// the count (semrec._threads.resolve_num_threads); this is the safety net behind it.
struct ThreadCount {
  int value = 1;
  operator int() const { return value; }
};

// Polls Python's signal handlers (so Ctrl-C stops a long kernel) at most every 50 ms. The
// kernel calls it only on the thread that released the GIL, which is the one signals reach.
class PythonStopCheck {
 public:
  bool operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(50)) return false;
    last_ = now;
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// The enum value a string argument names, among `choices` (listed in that order in the error).
template <class Enum>
struct Choice {
  const char* name;
  Enum value;
};

template <class Enum>
Enum parse_choice(const char* what, const std::string& name,
                  std::initializer_list<Choice<Enum>> choices) {
  std::string listed;
  for (const Choice<Enum>& choice : choices) {
    if (name == choice.name) return choice.value;
    listed += (listed.empty() ? "'" : " or '") + std::string(choice.name) + "'";
  }
  throw std::invalid_argument(std::string(what) + " must be " + listed + ", got '" + name + "'");
}

// The (ids, scores) arrays of a top-k over `rows` queries, `out` pointing into them.
inline py::tuple topk_result(std::int64_t rows, int k, TopKOutput& out) {
  if (k < 1) throw std::invalid_argument("k must be >= 1");
  CArray<std::int32_t> ids({rows, static_cast<std::int64_t>(k)});
  CArray<float> scores({rows, static_cast<std::int64_t>(k)});
  out = {ids.mutable_data(), scores.mutable_data()};
  return py::make_tuple(ids, scores);
}

// Runs fn(stop) with the GIL released. Python objects must all have been read before.
// A kernel's progress report (work done so far, told on the calling thread) passed on to a
// Python callable, such as a tqdm bar's update, with the GIL, at most every 100 ms; an empty
// function without one. `progress` must outlive the kernel call.
inline std::function<void(std::int64_t)> throttled(const std::optional<py::function>& progress) {
  if (!progress) return {};
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);  // report at once
  return [&progress, last](std::int64_t done) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(100)) return;
    last = now;
    py::gil_scoped_acquire gil;
    (*progress)(done);
  };
}

template <class Fn>
void without_gil(Fn&& fn) {
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    try {
      fn(StopCheck(PythonStopCheck()));
    } catch (const Interrupted&) {
      interrupted = true;
    }
  }
  // The KeyboardInterrupt raised by the signal handler is pending: re-raise it.
  if (interrupted) throw py::error_already_set();
}

}  // namespace semrec::bindings

namespace pybind11::detail {

template <>
struct type_caster<semrec::bindings::ThreadCount> {
  PYBIND11_TYPE_CASTER(semrec::bindings::ThreadCount, const_name("int"));

  bool load(handle src, bool /*convert*/) {
    if (!src || PyBool_Check(src.ptr()) || !PyLong_Check(src.ptr())) return false;
    int overflow = 0;
    const long long n = PyLong_AsLongLongAndOverflow(src.ptr(), &overflow);
    if (n == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
    if (overflow < 0 || n < 1) {
      value.value = 0;  // the kernel reports it
    } else {
      value.value =
          semrec::usable_threads(overflow > 0 ? std::numeric_limits<long long>::max() : n);
    }
    return true;
  }

  static handle cast(semrec::bindings::ThreadCount src, return_value_policy, handle) {
    return PyLong_FromLong(src.value);
  }
};

}  // namespace pybind11::detail
