#include "semrec/rerank.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace semrec {

namespace {

// Rows per parallel task: amortises scheduling and buffer allocation, still balances well.
constexpr std::int64_t kRowsPerTask = 16;

using Float8 = float __attribute__((vector_size(32)));  // GCC's vectors: SIMD on every build

// dot(a[r], b) for R rows at once (their chains interleave), each in one fixed order set by
// the code alone (4 x 8 interleaved partial sums, added pairwise, then the tail): a row's sum is
// the same bits whatever R and wherever the row sits, so MMR's ties go to the first candidate.
// Eigen's GEMV, used before, summed a row in an order that depended on its position in the
// block, and broke ties by rounding. (Fused multiply-adds, where the build has them, kept its
// speed; the sums may then differ between builds, never between rows.)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
template <int R>
void fixed_order_dots(const float* const* a, const float* b, std::int64_t n, double* out) {
  Float8 acc[R][4] = {};
  std::int64_t d = 0;
  for (; d + 32 <= n; d += 32) {
    for (int j = 0; j < 4; ++j) {
      Float8 y;
      std::memcpy(&y, b + d + 8 * j, sizeof y);  // unaligned loads
      for (int r = 0; r < R; ++r) {
        Float8 x;
        std::memcpy(&x, a[r] + d + 8 * j, sizeof x);
        acc[r][j] += x * y;
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const Float8 sum = (acc[r][0] + acc[r][1]) + (acc[r][2] + acc[r][3]);
    float total = ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
    for (std::int64_t t = d; t < n; ++t) total += a[r][t] * b[t];
    out[r] = total;
  }
}
#pragma GCC pop_options

// Per-thread scratch, reused across the rows of one task.
struct Scratch {
  std::vector<std::int64_t> valid;  // columns holding a real id
  std::vector<const float*> rows;   // their embeddings
  std::vector<std::int64_t> open;   // the candidates still alive at a pick
  std::vector<double> max_sim;
  std::vector<char> alive;
};

void rerank_row(const CandidateView& c, std::int64_t row, const MatrixView& emb, int k,
                double lambda, Scratch& s, const RerankOutput& out) {
  const std::int32_t* ids = c.ids + row * c.width;
  const float* rel = c.relevance + row * c.width;
  std::int32_t* out_ids = out.ids + row * k;
  float* out_rel = out.relevance + row * k;
  std::int32_t* out_pos = out.positions ? out.positions + row * k : nullptr;

  s.valid.clear();
  for (std::int64_t j = 0; j < c.width; ++j) {
    if (ids[j] >= 0) s.valid.push_back(j);
  }
  const auto m = static_cast<std::int64_t>(s.valid.size());
  const std::int64_t dim = emb.cols;
  s.rows.resize(static_cast<std::size_t>(m));
  for (std::int64_t v = 0; v < m; ++v) s.rows[v] = emb.row(ids[s.valid[v]]);
  s.max_sim.assign(static_cast<std::size_t>(m), -std::numeric_limits<double>::infinity());
  s.alive.assign(static_cast<std::size_t>(m), 1);

  int picked = 0;
  for (; picked < k; ++picked) {
    std::int64_t best = -1;
    double best_value = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < m; ++v) {
      if (!s.alive[v]) continue;
      const double r = rel[s.valid[v]];
      // The first pick has nothing to be diverse from: it is the most relevant candidate.
      const double value = picked == 0 ? r : lambda * r - (1.0 - lambda) * s.max_sim[v];
      if (best < 0 || value > best_value) {
        best = v;
        best_value = value;
      }
    }
    if (best < 0) break;
    const std::int64_t column = s.valid[best];
    const std::int32_t id = ids[column];
    out_ids[picked] = id;
    out_rel[picked] = rel[column];
    if (out_pos) out_pos[picked] = static_cast<std::int32_t>(column);
    for (std::int64_t v = 0; v < m; ++v) {
      if (ids[s.valid[v]] == id) s.alive[v] = 0;
    }
    if (picked + 1 == k) continue;
    s.open.clear();  // picked candidates (or their id) are never compared again
    for (std::int64_t v = 0; v < m; ++v) {
      if (s.alive[v]) s.open.push_back(v);
    }
    const float* chosen = emb.row(id);
    const auto n_open = static_cast<std::int64_t>(s.open.size());
    const float* rows[4];
    double sims[4];
    const auto fold = [&](std::int64_t o, int group) {  // the group's sims into max_sim
      for (int r = 0; r < group; ++r) {
        double& most = s.max_sim[s.open[o + r]];
        most = std::max(most, sims[r]);
      }
    };
    std::int64_t o = 0;
    for (; o + 4 <= n_open; o += 4) {
      if (picked == 0) {  // the rows' first use: ask for the next group's while this one sums
        for (std::int64_t r = o + 4; r < std::min(o + 8, n_open); ++r) {
          const char* row = reinterpret_cast<const char*>(s.rows[s.open[r]]);
          for (std::int64_t b = 0; b < dim * 4; b += 64) __builtin_prefetch(row + b);
        }
      }
      for (int r = 0; r < 4; ++r) rows[r] = s.rows[s.open[o + r]];
      fixed_order_dots<4>(rows, chosen, dim, sims);
      fold(o, 4);
    }
    for (; o < n_open; ++o) {
      rows[0] = s.rows[s.open[o]];
      fixed_order_dots<1>(rows, chosen, dim, sims);
      fold(o, 1);
    }
  }
  for (int t = picked; t < k; ++t) {
    out_ids[t] = -1;
    out_rel[t] = -std::numeric_limits<float>::infinity();
    if (out_pos) out_pos[t] = -1;
  }
}

}  // namespace

void mmr(const CandidateView& candidates, const MatrixView& embeddings, int k, double lambda,
         int num_threads, RerankOutput out, const StopCheck& stop) {
  if (k < 1) throw std::invalid_argument("k must be >= 1");
  if (!(lambda >= 0.0 && lambda <= 1.0)) throw std::invalid_argument("lambda must lie in [0, 1]");
  if (candidates.width < 0 || candidates.rows < 0) {
    throw std::invalid_argument("candidates must have a non-negative shape");
  }
  const std::int64_t total = candidates.rows * candidates.width;
  for (std::int64_t i = 0; i < total; ++i) {
    const std::int32_t id = candidates.ids[i];
    if (id < -1 || id >= embeddings.rows) {
      throw std::out_of_range("candidate id outside [0, n_items) (or -1 padding)");
    }
  }
  const std::int64_t n_tasks = (candidates.rows + kRowsPerTask - 1) / kRowsPerTask;
  parallel_tasks(n_tasks, num_threads, stop, [&](std::int64_t task) {
    Scratch scratch;
    const std::int64_t end = std::min(candidates.rows, (task + 1) * kRowsPerTask);
    for (std::int64_t row = task * kRowsPerTask; row < end; ++row) {
      rerank_row(candidates, row, embeddings, k, lambda, scratch, out);
    }
  });
}

}  // namespace semrec
