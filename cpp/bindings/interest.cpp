#include "semrec/interest.hpp"

#include <exception>
#include <optional>
#include <span>
#include <string>

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

template <class Time>
InterestEvents<Time> events_view(const CArray<std::int64_t>& indptr,
                                 const CArray<std::int32_t>& indices, const CArray<float>& weights,
                                 const std::optional<CArray<Time>>& times, std::int64_t cols) {
  const CsrView csr = csr_view(indptr, indices, cols, "interactions");
  if (weights.ndim() != 1 || weights.shape(0) != indices.shape(0)) {
    throw std::invalid_argument("weights must be 1-D and match indices");
  }
  if (times && (times->ndim() != 1 || times->shape(0) != indices.shape(0))) {
    throw std::invalid_argument("timestamps must be 1-D and match indices");
  }
  return {csr, weights.data(), times ? times->data() : nullptr};
}

template <class Time>
void def_profiles(py::module_& m) {
  m.def(
      "interest_profiles",
      [](const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
         const CArray<float>& weights, std::optional<CArray<Time>> times,
         const CArray<float>& items, double half_life, ThreadCount num_threads) {
        const MatrixView x = matrix_view(items, "items");
        const auto ev = events_view<Time>(indptr, indices, weights, times, x.rows);
        CArray<float> out({ev.csr.rows, x.cols});
        float* data = out.mutable_data();
        without_gil([&](const StopCheck& stop) {
          interest_profiles(ev, x, half_life, num_threads, data, stop);
        });
        return out;
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("weights").noconvert(),
      py::arg("times").noconvert(), py::arg("items").noconvert(), py::arg("half_life"),
      py::arg("num_threads"),
      "Normalised, decayed user profiles; see semrec.interest.user_profiles.");
}

template <class Time>
void def_state_methods(py::class_<InterestState>& cls) {
  cls.def(
      "add_many",
      [](InterestState& s, const CArray<float>& items, const CArray<std::int64_t>& users,
         const CArray<std::int32_t>& ids, std::optional<CArray<float>> weights,
         std::optional<CArray<Time>> times, std::optional<CArray<std::int64_t>> reset,
         double item_norm) {
        const MatrixView x = matrix_view(items, "items");
        const std::int64_t n = users.size();
        if (users.ndim() != 1 || ids.ndim() != 1 || ids.size() != n ||
            (weights && weights->size() != n) || (times && times->size() != n) ||
            (reset && reset->ndim() != 1)) {
          throw std::invalid_argument("users, items, weights and times must be 1-D, same length");
        }
        const float* w = weights ? weights->data() : nullptr;
        const Time* t = times ? times->data() : nullptr;
        std::span<const std::int64_t> cleared;
        if (reset) cleared = {reset->data(), static_cast<std::size_t>(reset->size())};
        without_gil([&](const StopCheck& stop) {
          s.add_many(x, n, users.data(), ids.data(), w, t, stop, cleared, item_norm);
        });
      },
      py::arg("items").noconvert(), py::arg("users").noconvert(), py::arg("ids").noconvert(),
      py::arg("weights").noconvert(), py::arg("times").noconvert(), py::arg("reset").noconvert(),
      py::arg("item_norm"),
      "Apply events in order after the reset users forget theirs, all or nothing (new users "
      "are created; item_norm bounds the items' norms); SumOverflow if an event is refused.");
  cls.def(
      "add_rows",
      [](InterestState& s, const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
         const CArray<float>& weights, std::optional<CArray<Time>> times,
         const CArray<float>& items, std::int64_t first_user, ThreadCount num_threads) {
        const MatrixView x = matrix_view(items, "items");
        const auto ev = events_view<Time>(indptr, indices, weights, times, x.rows);
        without_gil(
            [&](const StopCheck& stop) { s.add_rows(ev, x, first_user, num_threads, stop); });
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("weights").noconvert(),
      py::arg("times").noconvert(), py::arg("items").noconvert(), py::arg("first_user"),
      py::arg("num_threads"),
      "Add CSR row r to user first_user + r, in parallel over rows, all or nothing (new users "
      "are created); SumOverflow if a row is refused.");
}

}  // namespace

void register_interest(py::module_& m) {
  // A refused event reaches Python as SumOverflow with args (user, peak), no message: the
  // Python layer words it for the argument its own caller passed.
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> overflow;
  overflow.call_once_and_store_result(
      [&]() { return py::exception<SumOverflow>(m, "SumOverflow", PyExc_ValueError); });
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const SumOverflow& e) {
      py::set_error(overflow.get_stored(), py::make_tuple(e.user(), e.peak()));
    }
  });

  def_profiles<std::int64_t>(m);
  def_profiles<double>(m);

  py::class_<InterestState> cls(m, "InterestState",
                                "Per-user decayed sums; see semrec.interest.StreamingProfiles.");
  cls.def(py::init<std::int64_t, double>(), py::arg("dim"), py::arg("half_life"))
      .def_property_readonly("dim", &InterestState::dim)
      .def_property_readonly("n_users", &InterestState::n_users)
      .def_property_readonly("half_life", &InterestState::half_life)
      .def_property_readonly("latest", &InterestState::latest)
      .def("grow", &InterestState::grow, py::arg("n_users"))
      .def(
          "reset",
          [](InterestState& s, const CArray<std::int64_t>& users) {
            s.reset(users.data(), users.size());
          },
          py::arg("users").noconvert())
      .def(
          "add",
          [](InterestState& s, const CArray<float>& items, std::int64_t user, std::int64_t item,
             float weight, double t) {
            const MatrixView x = matrix_view(items, "items");
            if (x.cols != s.dim()) throw std::invalid_argument("items dimension differs");
            if (user < 0 || item < 0 || item >= x.rows) {
              throw std::out_of_range("user or item id out of range");
            }
            s.add(user, x.row(item), weight, t);
          },
          py::arg("items").noconvert(), py::arg("user"), py::arg("item"), py::arg("weight"),
          py::arg("t"), "One event (a new user id creates the user); SumOverflow if refused.")
      .def(
          "profiles",
          [](const InterestState& s, const CArray<std::int64_t>& users, ThreadCount num_threads) {
            CArray<float> out({users.size(), s.dim()});
            float* data = out.mutable_data();
            const std::int64_t* ids = users.data();
            const std::int64_t n = users.size();
            if (n <= 64) {
              s.profiles(ids, n, num_threads, data);
            } else {
              without_gil([&](const StopCheck&) { s.profiles(ids, n, num_threads, data); });
            }
            return out;
          },
          py::arg("users").noconvert(), py::arg("num_threads"))
      .def(
          "raw",
          [](const InterestState& s, std::int64_t user) {
            if (user < 0 || user >= s.n_users()) throw std::out_of_range("user id out of range");
            CArray<float> sum(s.dim());
            std::copy(s.sum(user), s.sum(user) + s.dim(), sum.mutable_data());
            return py::make_tuple(sum, s.reference_time(user), s.mass(user), s.count(user));
          },
          py::arg("user"), "(sum, reference_time, mass, count) of one user.");
  def_state_methods<std::int64_t>(cls);
  def_state_methods<double>(cls);
}

}  // namespace semrec::bindings
