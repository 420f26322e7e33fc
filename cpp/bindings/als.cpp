#include "semrec/als.hpp"

#include <optional>
#include <string>

#include "bindings/common.hpp"
#include "bindings/register.hpp"

namespace semrec::bindings {

namespace {

const double* gram_pointer(const std::optional<CArray<double>>& gram, std::int64_t dims) {
  if (!gram) return nullptr;
  if (gram->ndim() != 2 || gram->shape(0) != dims || gram->shape(1) != dims) {
    throw std::invalid_argument("gram must be a square matrix of the solved dimension");
  }
  return gram->data();
}

}  // namespace

void register_als(py::module_& m) {
  m.def(
      "csr_transpose",
      [](const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
         const CArray<float>& values, std::int64_t cols, ThreadCount num_threads) {
        const CsrValuesView r = csr_values_view(indptr, indices, values, cols, "ratings");
        CArray<std::int64_t> t_indptr({static_cast<py::ssize_t>(cols + 1)});
        CArray<std::int32_t> t_indices({static_cast<py::ssize_t>(indices.shape(0))});
        CArray<float> t_values({static_cast<py::ssize_t>(indices.shape(0))});
        std::int64_t* p = t_indptr.mutable_data();
        std::int32_t* i = t_indices.mutable_data();
        float* v = t_values.mutable_data();
        without_gil([&](const StopCheck& stop) { csr_transpose(r, num_threads, p, i, v, stop); });
        return py::make_tuple(t_indptr, t_indices, t_values);
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("values").noconvert(),
      py::arg("cols"), py::arg("num_threads"),
      "Transpose of a CSR matrix as (indptr, indices, values), rows in input-row order.");

  m.def(
      "als_gram",
      [](const CArray<float>& other, int dims, ThreadCount num_threads) {
        const MatrixView y = matrix_view(other, "other");
        CArray<double> out({static_cast<py::ssize_t>(dims), static_cast<py::ssize_t>(dims)});
        double* data = out.mutable_data();
        without_gil([&](const StopCheck& stop) { als_gram(y, dims, num_threads, data, stop); });
        return out;
      },
      py::arg("other").noconvert(), py::arg("dims"), py::arg("num_threads"),
      "YᵀY of the leading dims columns of other, in double.");

  m.def(
      "als_solve",
      [](const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
         const CArray<float>& values, const CArray<float>& other,
         std::optional<CArray<double>> gram, CArray<float> factors, bool implicit, int solve_dims,
         float regularization, const std::string& solver, int cg_steps, ThreadCount num_threads) {
        const MatrixView y = matrix_view(other, "other");
        const CsrValuesView r = csr_values_view(indptr, indices, values, y.rows, "ratings");
        const MatrixView x = matrix_view(factors, "factors");
        if (x.rows != r.rows || x.cols != y.cols) {
          throw std::invalid_argument("factors must have shape (ratings rows, other cols)");
        }
        const AlsSolver method = parse_choice<AlsSolver>(
            "solver", solver, {{"cg", AlsSolver::cg}, {"cholesky", AlsSolver::cholesky}});
        const AlsSettings settings{implicit, solve_dims, regularization, method, cg_steps};
        const double* g = gram_pointer(gram, solve_dims);
        float* out = factors.mutable_data();
        without_gil(
            [&](const StopCheck& stop) { als_solve(r, y, g, settings, num_threads, out, stop); });
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("values").noconvert(),
      py::arg("other").noconvert(), py::arg("gram").noconvert(), py::arg("factors").noconvert(),
      py::arg("implicit"), py::arg("solve_dims"), py::arg("regularization"), py::arg("solver"),
      py::arg("cg_steps"), py::arg("num_threads"),
      "One ALS half-step in place on factors; see semrec.ALS for the documented API.");

  m.def(
      "als_loss",
      [](const CArray<std::int64_t>& indptr, const CArray<std::int32_t>& indices,
         const CArray<float>& values, const CArray<float>& factors, const CArray<float>& other,
         std::optional<CArray<double>> gram, bool implicit, ThreadCount num_threads) {
        const MatrixView y = matrix_view(other, "other");
        const MatrixView x = matrix_view(factors, "factors");
        const CsrValuesView r = csr_values_view(indptr, indices, values, y.rows, "ratings");
        const double* g = gram_pointer(gram, y.cols);
        double loss = 0.0;
        without_gil([&](const StopCheck& stop) {
          loss = als_loss(r, x, y, g, implicit, num_threads, stop);
        });
        return loss;
      },
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("values").noconvert(),
      py::arg("factors").noconvert(), py::arg("other").noconvert(), py::arg("gram").noconvert(),
      py::arg("implicit"), py::arg("num_threads"), "Data term of the ALS training loss.");
}

}  // namespace semrec::bindings
