#include "semrec/knn.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "semrec/topk_selector.hpp"

namespace semrec {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Rows per parallel task: enough to amortise scheduling, few enough to balance heavy rows.
constexpr std::int64_t kRowsPerTask = 8;
// A row whose accumulation does more than kDenseShare adds per column goes to the dense array
// without bookkeeping and is scanned in full; lighter rows list the columns they touch.
constexpr std::int64_t kDenseShare = 1;
// The graph kernel goes dense sooner: above nt / 8 adds its vectorised scan of every target
// costs less than the sparse path's per-add bookkeeping and per-touch division (measured at
// 100k and 20k targets: the kernel 15-20% faster than with the threshold at nt).
constexpr std::int64_t kGraphDenseDivisor = 8;

// Per-thread scratch: a dense accumulator over the columns and a bitmap of the columns the
// current row has touched (small enough to stay in L1). Both are all zero between rows.
struct Scratch {
  std::vector<float> acc;
  std::vector<std::uint64_t> seen;
  std::vector<std::int32_t> touched;

  void ensure(std::int64_t n) {
    if (acc.empty() && n > 0) {
      acc.assign(static_cast<std::size_t>(n), 0.0f);
      seen.assign(static_cast<std::size_t>((n + 63) / 64), 0);
    }
  }
  bool marked(std::int32_t j) const { return (seen[j >> 6] >> (j & 63)) & 1u; }
  void mark(std::int32_t j) { seen[j >> 6] |= std::uint64_t{1} << (j & 63); }
  // Clears what the sparse path left: the touched columns (and `extra`, marked by the caller).
  void reset_sparse() {
    for (const std::int32_t j : touched) {
      acc[j] = 0.0f;
      seen[j >> 6] = 0;
    }
  }
};

// The matrix a row is multiplied with, its (column, value) pairs interleaved: one memory stream
// per row instead of two, which matters because every row is visited from many places. When
// the values take at most 256 distinct values and the columns fit in 24 bits (ratings, counts),
// each pair packs into 4 bytes (column | value code << 24), halving the bytes streamed; the
// value comes back exactly from a table, so the sums are bitwise the same either way.
struct Cell {
  std::int32_t col;
  float value;
};
constexpr int kCodeShift = 24;
constexpr std::uint32_t kColMask = (std::uint32_t{1} << kCodeShift) - 1;
constexpr int kMaxCodes = 256;

struct Packed {
  const std::int64_t* indptr = nullptr;
  std::vector<Cell> cells;
  std::vector<std::uint32_t> narrow;  // used instead of cells when non-empty
  float table[kMaxCodes] = {};
  std::int64_t cols = 0;
  bool is_narrow() const { return !narrow.empty(); }
};

// Codes for the values when there are few distinct ones (open addressing on the bit pattern);
// false when there are more than kMaxCodes.
bool code_values(const float* values, std::int64_t nnz, Packed& out) {
  constexpr int kSlots = 4 * kMaxCodes;
  std::uint32_t keys[kSlots];
  std::int16_t codes[kSlots];
  std::fill(codes, codes + kSlots, std::int16_t{-1});
  int n_codes = 0;
  out.narrow.resize(static_cast<std::size_t>(nnz));
  std::uint32_t last_bits = 0;
  std::uint32_t last_code = 0;
  bool have_last = false;
  for (std::int64_t p = 0; p < nnz; ++p) {
    std::uint32_t bits;
    std::memcpy(&bits, values + p, sizeof bits);
    if (!have_last || bits != last_bits) {
      std::uint32_t slot = (bits * 2654435761u) >> 22;  // 10 bits: kSlots
      while (codes[slot] >= 0 && keys[slot] != bits) slot = (slot + 1) & (kSlots - 1);
      if (codes[slot] < 0) {
        if (n_codes == kMaxCodes) {
          out.narrow.clear();
          out.narrow.shrink_to_fit();
          return false;
        }
        keys[slot] = bits;
        codes[slot] = static_cast<std::int16_t>(n_codes);
        out.table[n_codes++] = values[p];
      }
      last_bits = bits;
      last_code = static_cast<std::uint32_t>(codes[slot]);
      have_last = true;
    }
    out.narrow[p] = last_code << kCodeShift;
  }
  return true;
}

Packed pack(const CsrValuesView& m) {
  Packed out;
  out.indptr = m.indptr;
  out.cols = m.cols;
  const std::int64_t nnz = m.rows > 0 ? m.indptr[m.rows] : 0;
  if (nnz > 0 && m.cols <= std::int64_t{kColMask} + 1 && code_values(m.values, nnz, out)) {
    for (std::int64_t p = 0; p < nnz; ++p)
      out.narrow[p] |= static_cast<std::uint32_t>(m.indices[p]);
    return out;
  }
  out.cells.resize(static_cast<std::size_t>(nnz));
  for (std::int64_t p = 0; p < nnz; ++p) out.cells[p] = {m.indices[p], m.values[p]};
  return out;
}

// Readers of one packed row: its q-th column and value.
struct WideRow {
  const Cell* cell;
  std::int32_t col(std::int64_t q) const { return cell[q].col; }
  float value(std::int64_t q) const { return cell[q].value; }
};
struct NarrowRow {
  const std::uint32_t* cell;
  const float* table;
  std::int32_t col(std::int64_t q) const { return static_cast<std::int32_t>(cell[q] & kColMask); }
  float value(std::int64_t q) const { return table[cell[q] >> kCodeShift]; }
};

template <bool Narrow>
inline auto row_at(const Packed& m, std::int64_t c) {
  if constexpr (Narrow) {
    return NarrowRow{m.narrow.data() + m.indptr[c], m.table};
  } else {
    return WideRow{m.cells.data() + m.indptr[c]};
  }
}

// Sum over the row's entries (col, a) of the length of row `col` of m: the cost of a row.
std::int64_t row_work(const CsrValuesView& row_of, std::int64_t r, const Packed& m) {
  std::int64_t work = 0;
  for (std::int64_t p = row_of.indptr[r]; p < row_of.indptr[r + 1]; ++p) {
    const std::int32_t c = row_of.indices[p];
    work += m.indptr[c + 1] - m.indptr[c];
  }
  return work;
}

// The rows of m a row visits are scattered in memory; fetching the next ones ahead hides the
// latency of each row's first cache lines (the hardware prefetcher only follows a row once
// it has started).
// At 1M x 100k most of the kernel's time stalls on these loads; requesting the whole row (up to
// kPrefetchLines lines) a few rows ahead gained a few per cent there.
constexpr std::int64_t kPrefetchRow = 3;
constexpr std::int64_t kPrefetchIndptr = 8;
constexpr std::int64_t kPrefetchLines = 16;

template <bool Narrow>
inline void prefetch_ahead(const CsrValuesView& row_of, std::int64_t p, std::int64_t end,
                           const Packed& m) {
  if (p + kPrefetchIndptr < end) __builtin_prefetch(m.indptr + row_of.indices[p + kPrefetchIndptr]);
  if (p + kPrefetchRow < end) {
    const std::int32_t c = row_of.indices[p + kPrefetchRow];
    const auto next = row_at<Narrow>(m, c).cell;
    constexpr std::int64_t per_line = 64 / sizeof(*next);
    const std::int64_t lines = std::min(
        kPrefetchLines, (m.indptr[c + 1] - m.indptr[c]) / per_line + 2);  // + unaligned ends
    for (std::int64_t l = 0; l < lines; ++l) __builtin_prefetch(next + l * per_line);
  }
}

// add(j, a * m[c, j]) for every entry (c, a) of row r and every entry j of m's row c, in one
// fixed order (the row's entries, then m's). Both accumulations below sum in it, so their results
// are bitwise equal.
template <bool Narrow, class Add>
inline void for_each_product_of(const CsrValuesView& row_of, std::int64_t r, const Packed& m,
                                Add& add) {
  const std::int64_t end = row_of.indptr[r + 1];
  for (std::int64_t p = row_of.indptr[r]; p < end; ++p) {
    prefetch_ahead<Narrow>(row_of, p, end, m);
    const std::int32_t c = row_of.indices[p];
    const float a = row_of.values[p];
    const auto row = row_at<Narrow>(m, c);
    const std::int64_t n = m.indptr[c + 1] - m.indptr[c];
    for (std::int64_t q = 0; q < n; ++q) add(row.col(q), a * row.value(q));
  }
}

template <class Add>
inline void for_each_product(const CsrValuesView& row_of, std::int64_t r, const Packed& m,
                             Add add) {
  if (m.is_narrow()) {
    for_each_product_of<true>(row_of, r, m, add);
  } else {
    for_each_product_of<false>(row_of, r, m, add);
  }
}

// acc[j] += a * m[c, j] for every entry (c, a) of row r.
inline void accumulate_dense(const CsrValuesView& row_of, std::int64_t r, const Packed& m,
                             float* acc) {
  for_each_product(row_of, r, m, [acc](std::int32_t j, float v) { acc[j] += v; });
}

// The same sums, listing each column on its first touch.
inline void accumulate_sparse(const CsrValuesView& row_of, std::int64_t r, const Packed& m,
                              Scratch& s) {
  float* acc = s.acc.data();
  for_each_product(row_of, r, m, [acc, &s](std::int32_t j, float v) {
    if (!s.marked(j)) {
      s.mark(j);
      s.touched.push_back(j);
    }
    acc[j] += v;
  });
}

void check_values_csr(const CsrValuesView& m, const char* name) {
  if (m.rows < 0 || m.cols < 0 || (m.rows > 0 && m.indptr == nullptr)) {
    throw std::invalid_argument(std::string(name) + " is malformed");
  }
  if (m.cols > std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument(std::string(name) + " has more than 2^31 - 1 columns");
  }
  for (std::int64_t r = 0; r < m.rows; ++r) {
    if (m.indptr[r + 1] < m.indptr[r]) {
      throw std::invalid_argument(std::string(name) + ": indptr must be non-decreasing");
    }
  }
  const std::int64_t nnz = m.rows > 0 ? m.indptr[m.rows] : 0;
  for (std::int64_t p = 0; p < nnz; ++p) {
    if (m.indices[p] < 0 || m.indices[p] >= m.cols) {
      throw std::out_of_range(std::string(name) + ": column index " + std::to_string(m.indices[p]) +
                              " out of range for " + std::to_string(m.cols) + " columns");
    }
  }
}

// history @ graph is defined, and both are well-formed.
void check_product(const CsrValuesView& history, const CsrValuesView& graph) {
  if (history.cols != graph.rows) {
    throw std::invalid_argument("history has " + std::to_string(history.cols) +
                                " columns but graph has " + std::to_string(graph.rows) + " rows");
  }
  check_values_csr(history, "history");
  check_values_csr(graph, "graph");
}

}  // namespace

CsrResult neighbour_graph(CsrValuesView queries, CsrValuesView targets_t, const float* query_norms,
                          const float* target_norms, const std::int32_t* self,
                          const std::int32_t* target_ids, NeighbourSettings settings,
                          int num_threads, const StopCheck& stop, const Progress& progress) {
  if (settings.k < 1) throw std::invalid_argument("k must be >= 1");
  if (!(settings.shrink >= 0.0f)) throw std::invalid_argument("shrink must be >= 0");
  if (queries.cols != targets_t.rows) {
    throw std::invalid_argument("queries have " + std::to_string(queries.cols) +
                                " columns but targets_t has " + std::to_string(targets_t.rows) +
                                " rows");
  }
  check_values_csr(queries, "queries");
  check_values_csr(targets_t, "targets_t");
  const std::int64_t nq = queries.rows, nt = targets_t.cols;
  const float shrink = settings.shrink;
  const std::int64_t n_tasks = (nq + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<std::vector<ScoredId>> kept(static_cast<std::size_t>(n_tasks));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(nq), 0);
  // Heaviest rows first, so no thread is left alone with a heavy row at the end.
  std::vector<std::int64_t> work(static_cast<std::size_t>(nq), 0);
  for (std::int64_t r = 0; r < nq; ++r) {
    for (std::int64_t p = queries.indptr[r]; p < queries.indptr[r + 1]; ++p) {
      const std::int32_t c = queries.indices[p];
      work[r] += targets_t.indptr[c + 1] - targets_t.indptr[c];
    }
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(nq));
  for (std::int64_t r = 0; r < nq; ++r) order[r] = r;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return work[a] > work[b]; });
  std::vector<Scratch> scratch(static_cast<std::size_t>(usable_threads(num_threads)));
  const Packed targets = pack(targets_t);

  // One call for the whole graph (packing the targets once) still reports progress: from the
  // stop check, which runs on the calling thread between tasks.
  std::atomic<std::int64_t> rows_done{0};
  const StopCheck check = [&]() {
    if (progress) progress(rows_done.load(std::memory_order_relaxed));
    return stop && stop();
  };
  parallel_tasks(n_tasks, num_threads, check, [&](std::int64_t task) {
    Scratch& s = scratch[static_cast<std::size_t>(omp_get_thread_num())];
    s.ensure(nt);
    TopKSelector top(settings.k, 0.0f);
    std::vector<ScoredId>& out = kept[static_cast<std::size_t>(task)];
    for (std::int64_t pos = task * kRowsPerTask; pos < std::min(nq, (task + 1) * kRowsPerTask);
         ++pos) {
      const std::int64_t r = order[pos];
      const float nr = query_norms[r];
      const std::int32_t me = self ? self[r] : -1;
      if (nr > 0.0f) {
        if (work[r] * kGraphDenseDivisor > nt) {
          float* acc = s.acc.data();
          accumulate_dense(queries, r, targets, acc);
          if (me >= 0 && me < nt) acc[me] = 0.0f;
          for (std::int64_t j0 = 0; j0 < nt; j0 += 16) {
            const int n = static_cast<int>(std::min<std::int64_t>(16, nt - j0));
            float* a = acc + j0;
            const float* tn = target_norms + j0;
            // Cheap pre-filter (no division): sim >= floor needs a >= floor * denominator; the
            // slack covers rounding, the exact test follows.
            const float floor = top.threshold();
            int any = 0;
            for (int j = 0; j < n; ++j) {
              any |= static_cast<int>(a[j] > 0.0f) &
                     static_cast<int>(a[j] * 1.0001f >= floor * (nr * tn[j] + shrink));
            }
            if (any) {
              for (int j = 0; j < n; ++j) {
                if (a[j] == 0.0f) continue;
                const float sim = a[j] / (nr * tn[j] + shrink);
                const auto id = static_cast<std::int32_t>(j0 + j);
                const std::int32_t name = target_ids ? target_ids[id] : id;
                if (top.admits(sim, name)) top.push(sim, name);
              }
            }
            for (int j = 0; j < n; ++j) a[j] = 0.0f;
          }
        } else {
          s.touched.clear();
          accumulate_sparse(queries, r, targets, s);
          for (const std::int32_t j : s.touched) {
            if (j == me) continue;
            const float sim = s.acc[j] / (nr * target_norms[j] + shrink);
            const std::int32_t name = target_ids ? target_ids[j] : j;
            if (top.admits(sim, name)) top.push(sim, name);
          }
          s.reset_sparse();
        }
      }
      std::vector<ScoredId>& best = top.finish();
      std::sort(best.begin(), best.end(),
                [](const ScoredId& a, const ScoredId& b) { return a.id < b.id; });
      out.insert(out.end(), best.begin(), best.end());
      counts[static_cast<std::size_t>(r)] = static_cast<std::int64_t>(best.size());
      top.reset();
    }
    rows_done.fetch_add(std::min(nq, (task + 1) * kRowsPerTask) - task * kRowsPerTask,
                        std::memory_order_relaxed);
  });
  if (progress) progress(nq);

  CsrResult result;
  result.indptr.resize(static_cast<std::size_t>(nq) + 1, 0);
  for (std::int64_t r = 0; r < nq; ++r) result.indptr[r + 1] = result.indptr[r] + counts[r];
  result.indices.resize(static_cast<std::size_t>(result.indptr[nq]));
  result.values.resize(result.indices.size());
  for (std::int64_t task = 0; task < n_tasks; ++task) {
    const ScoredId* e = kept[task].data();
    for (std::int64_t pos = task * kRowsPerTask; pos < std::min(nq, (task + 1) * kRowsPerTask);
         ++pos) {
      const std::int64_t r = order[pos];
      for (std::int64_t at = result.indptr[r]; at < result.indptr[r + 1]; ++at, ++e) {
        result.indices[at] = e->id;
        result.values[at] = e->score;
      }
    }
  }
  return result;
}

void neighbour_topk(CsrValuesView history, CsrValuesView graph, int k, CsrView exclude,
                    const std::int32_t* candidates, std::int64_t n_candidates, int num_threads,
                    TopKOutput out, const StopCheck& stop) {
  if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
  check_product(history, graph);
  const std::int64_t nq = history.rows, n_items = graph.cols;
  check_csr(exclude, nq, n_items, "exclude", /*require_sorted=*/false);
  std::vector<unsigned char> allowed;
  if (candidates != nullptr) {
    allowed.assign(static_cast<std::size_t>(n_items), 0);
    for (std::int64_t c = 0; c < n_candidates; ++c) {
      const std::int32_t j = candidates[c];
      if (j < 0 || j >= n_items || (c > 0 && j <= candidates[c - 1])) {
        throw std::invalid_argument("candidates must be sorted, distinct item ids in range");
      }
      allowed[static_cast<std::size_t>(j)] = 1;
    }
  }
  const std::int64_t n_tasks = (nq + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<Scratch> scratch(static_cast<std::size_t>(usable_threads(num_threads)));
  const Packed through = pack(graph);

  parallel_tasks(n_tasks, num_threads, stop, [&](std::int64_t task) {
    Scratch& s = scratch[static_cast<std::size_t>(omp_get_thread_num())];
    s.ensure(n_items);
    TopKSelector top(k, 0.0f);
    float* acc = s.acc.data();
    for (std::int64_t r = task * kRowsPerTask; r < std::min(nq, (task + 1) * kRowsPerTask); ++r) {
      const bool dense = row_work(history, r, through) > kDenseShare * n_items;
      // Excluded items hold -inf: every later sum keeps them there, below any eligible score.
      const std::int64_t e0 = exclude.present() ? exclude.indptr[r] : 0;
      const std::int64_t e1 = exclude.present() ? exclude.indptr[r + 1] : 0;
      for (std::int64_t e = e0; e < e1; ++e) acc[exclude.indices[e]] = kNegInf;
      std::int64_t positives = 0;
      if (dense) {
        accumulate_dense(history, r, through, acc);
        const std::int64_t n = candidates ? n_candidates : n_items;
        for (std::int64_t c = 0; c < n; ++c) {
          const std::int32_t j = candidates ? candidates[c] : static_cast<std::int32_t>(c);
          const float v = acc[j];
          if (v > 0.0f) {
            ++positives;
            if (v >= top.threshold() && top.admits(v, j)) top.push(v, j);
          }
        }
      } else {
        s.touched.clear();
        accumulate_sparse(history, r, through, s);
        for (const std::int32_t j : s.touched) {
          const float v = acc[j];
          if (v > 0.0f && (candidates == nullptr || allowed[j])) {
            ++positives;
            if (top.admits(v, j)) top.push(v, j);
          }
        }
      }
      std::vector<ScoredId>& best = top.finish();
      // Fewer than k positive scores: the lowest eligible ids with score exactly 0 follow.
      if (positives < k) {
        const std::int64_t n = candidates ? n_candidates : n_items;
        for (std::int64_t c = 0; c < n && static_cast<int>(best.size()) < k; ++c) {
          const std::int32_t j = candidates ? candidates[c] : static_cast<std::int32_t>(c);
          if (acc[j] == 0.0f) best.push_back({0.0f, j});
        }
      }
      std::int32_t* ids = out.ids + r * k;
      float* scores = out.scores + r * k;
      for (int i = 0; i < k; ++i) {
        const bool have = i < static_cast<int>(best.size());
        ids[i] = have ? best[i].id : -1;
        scores[i] = have ? best[i].score : kNegInf;
      }
      top.reset();
      // Leave the accumulator all zero, as the dense path expects it.
      if (dense) {
        std::memset(acc, 0, static_cast<std::size_t>(n_items) * sizeof(float));
      } else {
        s.reset_sparse();
        for (std::int64_t e = e0; e < e1; ++e) acc[exclude.indices[e]] = 0.0f;
      }
    }
  });
}

void neighbour_scores(CsrValuesView history, CsrValuesView graph, int num_threads, float* out,
                      const StopCheck& stop) {
  check_product(history, graph);
  const std::int64_t nq = history.rows, n_items = graph.cols;
  const Packed through = pack(graph);
  const std::int64_t n_tasks = (nq + kRowsPerTask - 1) / kRowsPerTask;
  parallel_tasks(n_tasks, num_threads, stop, [&](std::int64_t task) {
    for (std::int64_t r = task * kRowsPerTask; r < std::min(nq, (task + 1) * kRowsPerTask); ++r) {
      float* acc = out + r * n_items;
      std::fill(acc, acc + n_items, 0.0f);
      accumulate_dense(history, r, through, acc);
    }
  });
}

}  // namespace semrec
