#include "semrec/als.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace semrec {
namespace {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMapF = Eigen::Map<const RowMatrixF>;
using ConstRowMapD =
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

constexpr std::int64_t kGramChunk = 4096;  // rows per partial Gram matrix

void check_inputs(CsrValuesView r, MatrixView other, int dims) {
  if (dims < 1 || dims > other.cols) {
    throw std::invalid_argument("solve_dims must be in [1, " + std::to_string(other.cols) + "]");
  }
  if (r.cols != other.rows) {
    throw std::invalid_argument("ratings has " + std::to_string(r.cols) +
                                " columns but other has " + std::to_string(other.rows) + " rows");
  }
}

// Scratch reused across rows by one thread. Eigen allocates dynamic matrices aligned, so the
// vectorised reductions below peel identically on every thread: results never depend on which
// thread solved a row.
struct Scratch {
  RowMatrixF gathered;  // the other side's rows for this row's entries (capacity grows)
  Eigen::VectorXf weights, targets, per_entry;
  Eigen::VectorXf x, ap, res, p;  // CG vectors of the solved dimension: no allocation per row

  void reserve(std::int64_t n, int dims) {
    if (gathered.rows() < n || gathered.cols() != dims) {
      gathered.resize(std::max<std::int64_t>(n, gathered.rows()), dims);
    }
    if (weights.size() < n) {
      weights.resize(n);
      targets.resize(n);
      per_entry.resize(n);
    }
    x.resize(dims);
    ap.resize(dims);
    res.resize(dims);
    p.resize(dims);
  }
};

}  // namespace

void csr_transpose(CsrValuesView m, int num_threads, std::int64_t* out_indptr,
                   std::int32_t* out_indices, float* out_values, const StopCheck& stop) {
  // Counting sort by column over a few contiguous row blocks: each block counts its columns,
  // the prefix sums give every (block, column) its own output slot range, and the blocks then
  // scatter in row order without sharing a slot.
  constexpr std::int64_t kMinRowsPerBlock = 4096;
  const std::int64_t blocks = std::max<std::int64_t>(
      1, std::min<std::int64_t>(4 * std::max(num_threads, 1), m.rows / kMinRowsPerBlock));
  const auto cols = static_cast<std::size_t>(m.cols);
  std::vector<std::vector<std::int64_t>> offset(static_cast<std::size_t>(blocks));
  auto first_row = [&](std::int64_t b) { return m.rows * b / blocks; };
  parallel_tasks(blocks, num_threads, stop, [&](std::int64_t b) {
    auto& count = offset[static_cast<std::size_t>(b)];
    count.assign(cols, 0);
    for (std::int64_t k = m.indptr[first_row(b)]; k < m.indptr[first_row(b + 1)]; ++k) {
      const std::int32_t c = m.indices[k];
      if (c < 0 || c >= m.cols) throw std::out_of_range("column index out of range");
      ++count[static_cast<std::size_t>(c)];
    }
  });
  std::int64_t total = 0;
  for (std::size_t c = 0; c < cols; ++c) {
    out_indptr[c] = total;
    for (auto& count : offset) {
      const std::int64_t n = count[c];
      count[c] = total;
      total += n;
    }
  }
  out_indptr[cols] = total;
  parallel_tasks(blocks, num_threads, stop, [&](std::int64_t b) {
    auto& next = offset[static_cast<std::size_t>(b)];
    for (std::int64_t r = first_row(b); r < first_row(b + 1); ++r) {
      for (std::int64_t k = m.indptr[r]; k < m.indptr[r + 1]; ++k) {
        const std::int64_t slot = next[static_cast<std::size_t>(m.indices[k])]++;
        out_indices[slot] = static_cast<std::int32_t>(r);
        out_values[slot] = m.values[k];
      }
    }
  });
}

void als_gram(MatrixView other, int dims, int num_threads, double* out, const StopCheck& stop) {
  if (dims < 1 || dims > other.cols) throw std::invalid_argument("dims out of range");
  const std::int64_t chunks = (other.rows + kGramChunk - 1) / kGramChunk;
  std::vector<Eigen::MatrixXd> partial(static_cast<std::size_t>(chunks));
  const ConstRowMapF y(other.data, other.rows, other.cols);
  parallel_tasks(chunks, num_threads, stop, [&](std::int64_t c) {
    const std::int64_t begin = c * kGramChunk;
    const std::int64_t n = std::min(kGramChunk, other.rows - begin);
    const RowMatrixF block = y.block(begin, 0, n, dims);
    const Eigen::MatrixXf g = block.transpose() * block;
    partial[static_cast<std::size_t>(c)] = g.cast<double>();
  });
  // Summed in chunk order, so the result is the same for any thread count.
  Eigen::MatrixXd total = Eigen::MatrixXd::Zero(dims, dims);
  for (const auto& p : partial) total += p;
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(out, dims,
                                                                                     dims) = total;
}

void als_solve(CsrValuesView r, MatrixView other, const double* gram, const AlsSettings& settings,
               int num_threads, float* factors, const StopCheck& stop) {
  const int s = settings.solve_dims;
  const int d = static_cast<int>(other.cols);
  check_inputs(r, other, s);
  if (settings.implicit && gram == nullptr) {
    throw std::invalid_argument("implicit ALS needs the Gram matrix of the other side");
  }
  if (settings.solver == AlsSolver::cg && settings.cg_steps < 1) {
    throw std::invalid_argument("cg_steps must be >= 1");
  }
  const float lambda = settings.regularization;
  Eigen::MatrixXd gram_d = Eigen::MatrixXd::Zero(s, s);
  if (settings.implicit) gram_d = ConstRowMapD(gram, s, s);
  const Eigen::MatrixXf gram_f = gram_d.cast<float>();
  const ConstRowMapF y(other.data, other.rows, other.cols);

  parallel_tasks(r.rows, num_threads, stop, [&](std::int64_t u) {
    thread_local Scratch scratch;
    const std::int64_t begin = r.indptr[u];
    const std::int64_t n = r.indptr[u + 1] - begin;
    float* row = factors + u * d;
    if (n == 0) {  // no evidence: the regularised solution is zero
      std::fill(row, row + s, 0.0f);
      return;
    }
    scratch.reserve(n, s);
    auto yu = scratch.gathered.topRows(n);
    auto w = scratch.weights.head(n);
    auto t = scratch.targets.head(n);
    const Eigen::VectorXf fixed_self = Eigen::Map<const Eigen::VectorXf>(row + s, d - s);
    constexpr std::int64_t kAhead = 8;  // rows of `other` requested ahead of the gather
    const std::int64_t line_floats = 64 / static_cast<std::int64_t>(sizeof(float));
    for (std::int64_t k = 0; k < n; ++k) {
      if (k + kAhead < n) {
        const std::int32_t ahead = r.indices[begin + k + kAhead];
        if (ahead >= 0 && ahead < other.rows) {
          const float* next = other.data + static_cast<std::int64_t>(ahead) * d;
          for (std::int64_t c = 0; c < s; c += line_floats) __builtin_prefetch(next + c);
        }
      }
      const std::int32_t i = r.indices[begin + k];
      if (i < 0 || i >= other.rows) throw std::out_of_range("column index out of range");
      yu.row(k) = y.row(i).head(s);
      const float v = r.values[begin + k];
      if (settings.implicit) {
        w(k) = v;
        t(k) = 1.0f + v;
      } else {
        w(k) = 1.0f;
        // The fixed columns (biases) are part of the prediction: solve for what they leave.
        t(k) = d > s ? v - y.row(i).tail(d - s).dot(fixed_self.transpose()) : v;
      }
    }
    Eigen::VectorXf& x = scratch.x;
    x = Eigen::Map<const Eigen::VectorXf>(row, s);

    if (settings.solver == AlsSolver::cholesky) {
      // Accumulated in double: with weights near 1e6 the float32 sums alone were ~1% off.
      const Eigen::MatrixXd yd = yu.cast<double>();
      const Eigen::VectorXd b = yd.transpose() * t.cast<double>();
      Eigen::MatrixXd a = gram_d;
      a.noalias() += yd.transpose() * (w.cast<double>().asDiagonal() * yd);
      a.diagonal().array() += static_cast<double>(lambda);
      Eigen::LLT<Eigen::MatrixXd> llt(a);
      // A weight ~1e14 times the rest leaves the smaller directions to rounding: a "solution"
      // would be noise, so it is refused like a failed factorisation (rcond ~ eps / accuracy).
      if (llt.info() != Eigen::Success || !(llt.rcond() > 1e-14)) {
        throw std::invalid_argument("normal equations are not positive definite (row " +
                                    std::to_string(u) + "); use regularization > 0");
      }
      x = llt.solve(b).cast<float>();
    } else {
      // Conjugate gradient on (G + Yuᵀ W Yu + λI) x = b, warm-started from the current row.
      // The matrix is applied as products with Yu, never formed: O(n·s) per step, not O(n·s²).
      auto tmp = scratch.per_entry.head(n);
      auto apply = [&](const Eigen::VectorXf& p, Eigen::VectorXf& out) {
        tmp.noalias() = yu * p;
        tmp.array() *= w.array();
        out.noalias() = yu.transpose() * tmp;
        if (settings.implicit) out.noalias() += gram_f * p;
        out += lambda * p;
      };
      Eigen::VectorXf& ap = scratch.ap;
      Eigen::VectorXf& res = scratch.res;
      Eigen::VectorXf& p = scratch.p;
      // Residual b - A x in one pass over Yu: Yuᵀ (t - W Yu x) - (G + λI) x.
      tmp.noalias() = yu * x;
      tmp.array() = t.array() - w.array() * tmp.array();
      res.noalias() = yu.transpose() * tmp;
      if (settings.implicit) res.noalias() -= gram_f * x;
      res -= lambda * x;
      p = res;
      float rs_old = res.squaredNorm();
      if (!std::isfinite(rs_old)) {
        // Overflow: hand NaN back so the caller's divergence check reports it.
        x.setConstant(std::numeric_limits<float>::quiet_NaN());
      }
      for (int step = 0; step < settings.cg_steps && rs_old > 1e-20f; ++step) {
        apply(p, ap);
        const float pap = p.dot(ap);
        if (!(pap > 0.0f)) break;  // converged to rounding, or a degenerate direction
        const float alpha = rs_old / pap;
        x += alpha * p;
        res -= alpha * ap;
        const float rs_new = res.squaredNorm();
        p = res + (rs_new / rs_old) * p;
        rs_old = rs_new;
      }
    }
    Eigen::Map<Eigen::VectorXf>(row, s) = x;
  });
}

double als_loss(CsrValuesView r, MatrixView factors, MatrixView other, const double* gram,
                bool implicit, int num_threads, const StopCheck& stop) {
  check_inputs(r, other, static_cast<int>(other.cols));
  if (factors.rows != r.rows || factors.cols != other.cols) {
    throw std::invalid_argument("factors do not match ratings and other");
  }
  if (implicit && gram == nullptr) throw std::invalid_argument("implicit loss needs the Gram");
  const int d = static_cast<int>(other.cols);
  const ConstRowMapF x(factors.data, factors.rows, d);
  const ConstRowMapF y(other.data, other.rows, d);
  Eigen::MatrixXd g;
  if (implicit) g = ConstRowMapD(gram, d, d);
  std::vector<double> per_row(static_cast<std::size_t>(r.rows), 0.0);
  parallel_tasks(r.rows, num_threads, stop, [&](std::int64_t u) {
    const Eigen::VectorXd xu = x.row(u).transpose().cast<double>();
    double sum = implicit ? xu.dot(g * xu) : 0.0;  // every cell as if unobserved (c=1, p=0)
    for (std::int64_t k = r.indptr[u]; k < r.indptr[u + 1]; ++k) {
      const double v = r.values[k];
      const double pred = y.row(r.indices[k]).cast<double>().dot(xu.transpose());
      if (implicit) {
        sum += (1.0 + v) * (1.0 - pred) * (1.0 - pred) - pred * pred;
      } else {
        sum += (v - pred) * (v - pred);
      }
    }
    per_row[static_cast<std::size_t>(u)] = sum;
  });
  double total = 0.0;
  for (double v : per_row) total += v;
  return total;
}

}  // namespace semrec
