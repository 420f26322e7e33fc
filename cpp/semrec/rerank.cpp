#include "semrec/rerank.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

namespace semrec {

namespace {

// Rows per parallel task: amortises scheduling and buffer allocation, still balances well.
constexpr std::int64_t kRowsPerTask = 16;

// Per-thread scratch, reused across the rows of one task.
struct Scratch {
  std::vector<std::int64_t> valid;  // columns holding a real id
  std::vector<float> gathered;      // their embeddings, transposed: term d of candidate v at d*m+v
  std::vector<float> sims;
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
  s.gathered.resize(static_cast<std::size_t>(m * dim));
  for (std::int64_t v = 0; v < m; ++v) {
    const float* src = emb.row(ids[s.valid[v]]);
    for (std::int64_t d = 0; d < dim; ++d) s.gathered[d * m + v] = src[d];
  }
  s.sims.resize(static_cast<std::size_t>(m));
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
    // Every candidate's similarity to the pick, each summed term by term in the same order
    // (vectorised across candidates): equal rows give equal sums wherever they sit, so ties go
    // to the first candidate. A GEMV's sums depend on a row's position, which broke ties.
    const float* chosen = emb.row(id);
    std::fill(s.sims.begin(), s.sims.end(), 0.0f);
    for (std::int64_t d = 0; d < dim; ++d) {
      const float c = chosen[d];
      const float* term = s.gathered.data() + d * m;
      float* sims = s.sims.data();
      for (std::int64_t v = 0; v < m; ++v) sims[v] += term[v] * c;
    }
    for (std::int64_t v = 0; v < m; ++v) {
      s.max_sim[v] = std::max(s.max_sim[v], static_cast<double>(s.sims[v]));
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
