// Alternating least squares: one half-step solves every row of one side against the fixed
// factors of the other side (implicit feedback after Hu, Koren & Volinsky, or explicit ratings).
#pragma once

#include <cstdint>

#include "semrec/parallel.hpp"
#include "semrec/views.hpp"

namespace semrec {

enum class AlsSolver { cg, cholesky };

struct AlsSettings {
  // Implicit: values are c - 1 (c the confidence), the preference of an observed entry is 1 and
  // every unobserved entry counts with confidence 1 through the Gram matrix of `other`.
  // Explicit: values are ratings (already centred by the caller), only observed entries count.
  bool implicit = true;
  // Leading columns of each row that are solved. The remaining columns are fixed; their dot
  // product with the other side is subtracted from the rating (how biases ride along).
  int solve_dims = 0;
  float regularization = 0.01f;
  AlsSolver solver = AlsSolver::cg;
  int cg_steps = 3;  // conjugate-gradient iterations per row, warm-started from the row
};

// The transpose of `m` (m.cols x m.rows) into caller-allocated arrays: out_indptr of
// m.cols + 1, out_indices and out_values of nnz. Each output row lists its entries in increasing
// input-row order, so sorted input gives sorted output; the result is identical for any thread
// count.
void csr_transpose(CsrValuesView m, int num_threads, std::int64_t* out_indptr,
                   std::int32_t* out_indices, float* out_values, const StopCheck& stop = {});

// YᵀY of the first `dims` columns of `other`, summed in double in a fixed order (row-major
// dims x dims into `out`): identical for any thread count.
void als_gram(MatrixView other, int dims, int num_threads, double* out, const StopCheck& stop = {});

// One half-step: rewrites each row of `factors` (ratings.rows x other.cols, row-major) with the
// regularised least-squares solution against `other`. `gram` is als_gram(other, solve_dims) and
// is needed for implicit feedback only (may be null for explicit). Rows without entries become
// zero in their solved columns. Each row's result depends only on its own inputs, so the
// outcome is identical for any thread count.
void als_solve(CsrValuesView ratings, MatrixView other, const double* gram,
               const AlsSettings& settings, int num_threads, float* factors,
               const StopCheck& stop = {});

// The data term of the training loss (regularisation is added by the caller).
// Implicit: sum over all (row, col) of c * (p - x·y)^2, with c = 1 + value and p = 1 on entries,
// c = 1 and p = 0 elsewhere; `gram` is als_gram(other, other.cols). Explicit: sum over entries of
// (value - x·y)^2.
double als_loss(CsrValuesView ratings, MatrixView factors, MatrixView other, const double* gram,
                bool implicit, int num_threads, const StopCheck& stop = {});

}  // namespace semrec
