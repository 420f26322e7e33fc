// semrec's ALS kernels (csr_transpose, als_gram, als_solve, als_loss) against the normal
// equations built and solved in double here (Gaussian elimination with partial pivoting).
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "harness.hpp"

namespace checks {

namespace {

using Dense = std::vector<std::vector<double>>;

std::vector<double> solve(Dense a, std::vector<double> b) {
  const auto n = static_cast<std::int64_t>(b.size());
  for (std::int64_t c = 0; c < n; ++c) {
    std::int64_t pivot = c;
    for (std::int64_t r = c + 1; r < n; ++r) {
      if (std::fabs(a[r][c]) > std::fabs(a[pivot][c])) pivot = r;
    }
    std::swap(a[c], a[pivot]);
    std::swap(b[c], b[pivot]);
    for (std::int64_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (std::int64_t j = c; j < n; ++j) a[r][j] -= f * a[c][j];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(static_cast<std::size_t>(n));
  for (std::int64_t r = n - 1; r >= 0; --r) {
    double s = b[r];
    for (std::int64_t j = r + 1; j < n; ++j) s -= a[r][j] * x[j];
    x[r] = s / a[r][r];
  }
  return x;
}

Dense gram(const std::vector<float>& y, std::int64_t rows, std::int64_t cols, int dims) {
  Dense g(dims, std::vector<double>(dims, 0.0));
  for (std::int64_t i = 0; i < rows; ++i) {
    for (int a = 0; a < dims; ++a) {
      for (int b = 0; b < dims; ++b) g[a][b] += double(y[i * cols + a]) * y[i * cols + b];
    }
  }
  return g;
}

// The exact row solution of als_solve (Cholesky) for row u.
std::vector<double> row_solution(const Csr& r, const std::vector<float>& y, std::int64_t d, int s,
                                 const Dense& g, bool implicit, float lambda,
                                 const float* fixed_row, std::int64_t u) {
  Dense a = implicit ? g : Dense(s, std::vector<double>(s, 0.0));
  std::vector<double> b(static_cast<std::size_t>(s), 0.0);
  for (std::int64_t p = r.indptr[u]; p < r.indptr[u + 1]; ++p) {
    const float* yi = y.data() + r.indices[p] * d;
    const double v = r.values[p];
    const double w = implicit ? v : 1.0;
    double target = implicit ? 1.0 + v : v;
    if (!implicit) {
      for (std::int64_t c = s; c < d; ++c) target -= double(yi[c]) * fixed_row[c];
    }
    for (int i = 0; i < s; ++i) {
      b[i] += target * yi[i];
      for (int j = 0; j < s; ++j) a[i][j] += w * yi[i] * yi[j];
    }
  }
  for (int i = 0; i < s; ++i) a[i][i] += lambda;
  return solve(a, b);
}

void solve_case(Rng& rng, std::int64_t users, std::int64_t items, std::int64_t d, int s,
                bool implicit, semrec::AlsSolver solver, double density) {
  const Csr r = random_csr(rng, users, items, density, implicit ? 0.0f : -2.0f, 4.0f);
  const std::vector<float> y = random_matrix(rng, items, d);
  const float lambda = 0.5f;
  std::vector<double> g_flat(static_cast<std::size_t>(s * s));
  semrec::als_gram(view(y, items, d), s, 2, g_flat.data());
  const Dense g = gram(y, items, d, s);
  bool gram_ok = true;
  for (int a = 0; a < s; ++a) {
    for (int b = 0; b < s; ++b) gram_ok = gram_ok && near(g_flat[a * s + b], g[a][b], 1e-5);
  }
  EXPECT(gram_ok, "als_gram items=" + std::to_string(items) + " dims=" + std::to_string(s));

  std::vector<float> factors = random_matrix(rng, users, d);
  const std::vector<float> before = factors;
  semrec::AlsSettings settings;
  settings.implicit = implicit;
  settings.solve_dims = s;
  settings.regularization = lambda;
  settings.solver = solver;
  settings.cg_steps = s + 20;  // enough steps to converge: compare with the exact solution
  semrec::als_solve(r.values_view(), view(y, items, d), implicit ? g_flat.data() : nullptr,
                    settings, 2, factors.data());
  const std::string label = std::string("als_solve ") + (implicit ? "implicit" : "explicit") +
                            (solver == semrec::AlsSolver::cg ? " cg" : " cholesky") +
                            " users=" + std::to_string(users) + " d=" + std::to_string(d) +
                            " s=" + std::to_string(s);
  const double tol = solver == semrec::AlsSolver::cg ? 2e-3 : 2e-4;
  for (std::int64_t u = 0; u < users; ++u) {
    const float* row = factors.data() + u * d;
    const bool empty = r.indptr[u] == r.indptr[u + 1];
    const std::vector<double> x =
        empty ? std::vector<double>(static_cast<std::size_t>(s), 0.0)
              : row_solution(r, y, d, s, g, implicit, lambda, before.data() + u * d, u);
    bool ok = true;
    for (int c = 0; c < s; ++c) ok = ok && near(row[c], x[c], tol);
    for (std::int64_t c = s; c < d; ++c) ok = ok && row[c] == before[u * d + c];
    EXPECT(ok, label + " row " + std::to_string(u) + ": equals the exact solution");
  }

  // The loss's data term against its definition, cell by cell.
  if (s == d) {
    std::vector<double> full(static_cast<std::size_t>(d * d));
    semrec::als_gram(view(y, items, d), static_cast<int>(d), 1, full.data());
    const double loss = semrec::als_loss(r.values_view(), view(factors, users, d),
                                         view(y, items, d), full.data(), implicit, 2);
    double expected = 0.0;
    for (std::int64_t u = 0; u < users; ++u) {
      for (std::int64_t i = 0; i < items; ++i) {
        const double pred = dot(factors.data() + u * d, y.data() + i * d, d);
        double v = 0.0;
        bool observed = false;
        for (std::int64_t p = r.indptr[u]; p < r.indptr[u + 1]; ++p) {
          if (r.indices[p] == i) {
            v = r.values[p];
            observed = true;
          }
        }
        if (implicit) {
          expected += (observed ? 1.0 + v : 1.0) * std::pow((observed ? 1.0 : 0.0) - pred, 2);
        } else if (observed) {
          expected += (v - pred) * (v - pred);
        }
      }
    }
    EXPECT(near(loss, expected, 1e-4), label + ": als_loss equals its definition");
  }
}

void transpose_case(Rng& rng, std::int64_t rows, std::int64_t cols, double density) {
  const Csr m = random_csr(rng, rows, cols, density, -1.0f, 1.0f);
  const std::int64_t nnz = m.indptr.back();
  std::vector<std::int64_t> indptr(static_cast<std::size_t>(cols) + 1);
  std::vector<std::int32_t> indices(static_cast<std::size_t>(nnz));
  std::vector<float> values(static_cast<std::size_t>(nnz));
  semrec::csr_transpose(m.values_view(), 2, indptr.data(), indices.data(), values.data());
  bool ok = indptr[0] == 0 && indptr[cols] == nnz;
  for (std::int64_t c = 0; ok && c < cols; ++c) {
    std::int64_t at = indptr[c];
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) {
        if (m.indices[p] != c) continue;
        ok = ok && at < indptr[c + 1] && indices[at] == r && values[at] == m.values[p];
        ++at;
      }
    }
    ok = ok && at == indptr[c + 1];
  }
  EXPECT(ok, "csr_transpose " + std::to_string(rows) + "x" + std::to_string(cols));
}

}  // namespace

void check_als(Rng& rng) {
  transpose_case(rng, 0, 5, 0.5);
  transpose_case(rng, 7, 1, 0.5);
  transpose_case(rng, 50, 40, 0.1);
  transpose_case(rng, 9000, 30, 0.01);  // several row blocks
  for (bool implicit : {true, false}) {
    for (auto solver : {semrec::AlsSolver::cholesky, semrec::AlsSolver::cg}) {
      solve_case(rng, 1, 1, 1, 1, implicit, solver, 1.0);
      solve_case(rng, 12, 30, 4, 4, implicit, solver, 0.3);
      solve_case(rng, 40, 25, 9, 9, implicit, solver, 0.2);
      solve_case(rng, 20, 60, 17, 17, implicit, solver, 0.05);           // rows without entries too
      if (!implicit) solve_case(rng, 15, 20, 6, 4, false, solver, 0.4);  // fixed bias columns
    }
  }

  const Csr r = random_csr(rng, 3, 4, 1.0, 1.0f, 2.0f);
  const std::vector<float> y = random_matrix(rng, 4, 2);
  std::vector<float> x(6);
  std::vector<double> g(4);
  semrec::AlsSettings settings;
  settings.solve_dims = 2;
  EXPECT_THROWS(std::invalid_argument,
                semrec::als_solve(r.values_view(), view(y, 4, 2), nullptr, settings, 1, x.data()),
                "als_solve implicit without the Gram");
  settings.solve_dims = 3;
  EXPECT_THROWS(std::invalid_argument,
                semrec::als_solve(r.values_view(), view(y, 4, 2), g.data(), settings, 1, x.data()),
                "als_solve solve_dims above the width");
  settings.solve_dims = 2;
  settings.cg_steps = 0;
  EXPECT_THROWS(std::invalid_argument,
                semrec::als_solve(r.values_view(), view(y, 4, 2), g.data(), settings, 1, x.data()),
                "als_solve cg_steps=0");
  settings.cg_steps = 3;
  EXPECT_THROWS(std::invalid_argument,
                semrec::als_solve(r.values_view(), view(y, 3, 2), g.data(), settings, 1, x.data()),
                "als_solve shape mismatch");
  Csr bad = r;
  bad.cols = 9;  // claims more columns than `other` has rows
  EXPECT_THROWS(
      std::invalid_argument,
      semrec::als_solve(bad.values_view(), view(y, 4, 2), g.data(), settings, 1, x.data()),
      "als_solve column count mismatch");
  EXPECT_THROWS(std::invalid_argument, semrec::als_gram(view(y, 4, 2), 0, 1, g.data()),
                "als_gram dims=0");
  settings.implicit = false;
  settings.solver = semrec::AlsSolver::cholesky;
  settings.regularization = 0.0f;
  Csr single = random_csr(rng, 1, 4, 0.0, 1.0f, 1.0f);
  single.indices = {0};
  single.values = {1.0f};
  single.indptr = {0, 1};
  std::vector<float> y2{1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f};
  std::vector<float> x2(2);
  EXPECT_THROWS(
      std::invalid_argument,
      semrec::als_solve(single.values_view(), view(y2, 4, 2), nullptr, settings, 1, x2.data()),
      "als_solve singular normal equations without regularization");
}

}  // namespace checks
