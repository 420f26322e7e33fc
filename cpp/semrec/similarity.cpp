#include "semrec/similarity.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace semrec {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Target block shapes for the blocked product: a 256 x 4096 float score block (4 MiB) stays in
// L2/L3 while it is scanned, and packing the item block costs 1/256 of the multiply.
constexpr std::int64_t kQueryBlock = 256;
constexpr std::int64_t kItemBlock = 4096;
constexpr std::int64_t kBlockAlign = 16;
// Queries per task in the gather (candidate list) kernel.
constexpr std::int64_t kGatherBlock = 64;

struct Entry {
  float score;
  std::int32_t id;
};

// Higher score first; among equal scores the lower id first.
inline bool better(const Entry& a, const Entry& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// The k best entries seen so far, as a heap whose front is the worst one kept.
class TopK {
 public:
  explicit TopK(int k) : k_(k) { heap_.reserve(static_cast<std::size_t>(k)); }

  // A candidate can only enter if it scores strictly above this. Candidates arrive in
  // increasing id order, so an equal score would lose the tie to the entry already kept.
  float threshold() const { return threshold_; }

  void push(float score, std::int32_t id) {
    const Entry e{score, id};
    if (static_cast<int>(heap_.size()) < k_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), better);
      if (static_cast<int>(heap_.size()) == k_) threshold_ = heap_.front().score;
    } else if (better(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), better);
      threshold_ = heap_.front().score;
    }
  }

  // Writes the kept entries best first, padded to k with (-1, -inf); empties the heap.
  void write(std::int32_t* ids, float* scores) {
    std::sort_heap(heap_.begin(), heap_.end(), better);
    std::size_t i = 0;
    for (; i < heap_.size(); ++i) {
      ids[i] = heap_[i].id;
      scores[i] = heap_[i].score;
    }
    for (; i < static_cast<std::size_t>(k_); ++i) {
      ids[i] = -1;
      scores[i] = kNegInf;
    }
    heap_.clear();
    threshold_ = kNegInf;
  }

 private:
  int k_;
  float threshold_ = kNegInf;
  std::vector<Entry> heap_;
};

// Feeds one row of scores (items id0, id0+1, ...) to the selector. Most scores fall below the
// threshold, so 16 at a time are tested with one vectorised comparison before any branching.
void select_row(const float* s, std::int64_t n, std::int64_t id0, TopK& top) {
  std::int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const float thr = top.threshold();
    int any = 0;
    for (int t = 0; t < 16; ++t) any |= static_cast<int>(s[j + t] > thr);
    if (!any) continue;
    for (int t = 0; t < 16; ++t) {
      if (s[j + t] > top.threshold()) top.push(s[j + t], static_cast<std::int32_t>(id0 + j + t));
    }
  }
  for (; j < n; ++j) {
    if (s[j] > top.threshold()) top.push(s[j], static_cast<std::int32_t>(id0 + j));
  }
}

// A 1-D partition into equal-width blocks. Block b owns [begin(b), end(b)) but is always
// computed over the full width starting at start(b) (the last block overlaps its neighbour), so
// every product has the same shape and a score never depends on where the block edges fall.
struct Grid {
  std::int64_t n = 0, width = 0, count = 0;
  std::int64_t begin(std::int64_t b) const { return b * width; }
  std::int64_t end(std::int64_t b) const { return std::min(n, (b + 1) * width); }
  std::int64_t start(std::int64_t b) const { return std::min(begin(b), n - width); }
};

Grid make_grid(std::int64_t n, std::int64_t target, std::int64_t align) {
  Grid g;
  g.n = n;
  if (n <= 0) return g;
  const std::int64_t blocks = (n + target - 1) / target;
  std::int64_t width = (n + blocks - 1) / blocks;
  width = (width + align - 1) / align * align;
  g.width = std::min(width, n);
  g.count = (n + g.width - 1) / g.width;
  return g;
}

std::string shape_str(std::int64_t r, std::int64_t c) {
  return "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
}

void check_csr(const CsrView& m, std::int64_t rows, std::int64_t cols, const char* name) {
  if (!m.present()) return;
  if (m.rows != rows || m.cols != cols) {
    throw std::invalid_argument(std::string(name) + " has shape " + shape_str(m.rows, m.cols) +
                                ", expected " + shape_str(rows, cols));
  }
  if (m.indptr[0] != 0) throw std::invalid_argument(std::string(name) + ": indptr[0] must be 0");
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::int64_t a = m.indptr[i], b = m.indptr[i + 1];
    if (b < a) throw std::invalid_argument(std::string(name) + ": indptr must be non-decreasing");
    for (std::int64_t p = a; p < b; ++p) {
      const std::int32_t j = m.indices[p];
      if (j < 0 || j >= cols) {
        throw std::out_of_range(std::string(name) + ": index " + std::to_string(j) +
                                " out of range for " + std::to_string(cols) + " items");
      }
      if (p > a && j < m.indices[p - 1]) {
        throw std::invalid_argument(std::string(name) + ": indices must be sorted within rows");
      }
    }
  }
}

void check_common(MatrixView queries, MatrixView items, int k, CsrView exclude, TopKOutput out) {
  if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
  if (queries.rows < 0 || items.rows < 0 || queries.cols < 0) {
    throw std::invalid_argument("negative matrix size");
  }
  if (queries.cols != items.cols) {
    throw std::invalid_argument("queries have " + std::to_string(queries.cols) +
                                " columns but items have " + std::to_string(items.cols));
  }
  if (items.rows > std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument("more than 2^31 - 1 items");
  }
  if (queries.rows > 0 && (out.ids == nullptr || out.scores == nullptr)) {
    throw std::invalid_argument("output buffers are missing");
  }
  check_csr(exclude, queries.rows, items.rows, "exclude");
}

// 1 / ||row|| for every row (0 for a zero row, so that its cosine with anything is 0).
std::vector<float> inverse_norms(MatrixView m, int num_threads, const StopCheck& stop) {
  std::vector<float> inv(static_cast<std::size_t>(m.rows));
  constexpr std::int64_t kRows = 4096;
  parallel_tasks((m.rows + kRows - 1) / kRows, num_threads, stop, [&](std::int64_t t) {
    const std::int64_t end = std::min(m.rows, (t + 1) * kRows);
    for (std::int64_t i = t * kRows; i < end; ++i) {
      const float norm = ConstVectorMap(m.row(i), m.cols).norm();
      inv[static_cast<std::size_t>(i)] = norm > 0.0f ? 1.0f / norm : 0.0f;
    }
  });
  return inv;
}

void fill_padding(std::int64_t rows, int k, TopKOutput out) {
  std::fill(out.ids, out.ids + rows * k, -1);
  std::fill(out.scores, out.scores + rows * k, kNegInf);
}

}  // namespace

void topk(MatrixView queries, MatrixView items, int k, Metric metric, CsrView exclude,
          int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, items, k, exclude, out);
  const std::int64_t nq = queries.rows, ni = items.rows, dim = queries.cols;
  if (nq == 0) return;
  if (ni == 0) return fill_padding(nq, k, out);

  const bool cosine = metric == Metric::cosine;
  std::vector<float> inv_q, inv_x;
  if (cosine) {
    inv_q = inverse_norms(queries, num_threads, stop);
    inv_x = inverse_norms(items, num_threads, stop);
  }

  const Grid qgrid = make_grid(nq, kQueryBlock, 8);
  const Grid igrid = make_grid(ni, kItemBlock, kBlockAlign);
  // Too few query blocks to keep every thread busy: also split the items into chunks and merge
  // the per-chunk top-k lists afterwards (exact, so the result is the same for any split).
  std::int64_t chunks = 1;
  if (qgrid.count < 2 * num_threads) {
    chunks = std::min(igrid.count, (4 * num_threads + qgrid.count - 1) / qgrid.count);
  }
  std::vector<std::int32_t> part_ids;
  std::vector<float> part_scores;
  if (chunks > 1) {
    part_ids.resize(static_cast<std::size_t>(nq * chunks * k));
    part_scores.resize(part_ids.size());
  }

  const ConstRowMap Q(queries.data, nq, dim);
  const ConstRowMap X(items.data, ni, dim);

  parallel_tasks(qgrid.count * chunks, num_threads, stop, [&](std::int64_t task) {
    const std::int64_t qb = task / chunks, chunk = task % chunks;
    const std::int64_t q0 = qgrid.begin(qb), q1 = qgrid.end(qb), qs = qgrid.start(qb);
    const std::int64_t b0 = chunk * igrid.count / chunks, b1 = (chunk + 1) * igrid.count / chunks;

    std::vector<TopK> tops(static_cast<std::size_t>(q1 - q0), TopK(k));
    std::vector<std::int64_t> cursor;  // next exclusion entry of each query
    if (exclude.present()) {
      cursor.resize(tops.size());
      const std::int32_t first = static_cast<std::int32_t>(igrid.begin(b0));
      for (std::int64_t q = q0; q < q1; ++q) {
        const std::int32_t* a = exclude.indices + exclude.indptr[q];
        const std::int32_t* b = exclude.indices + exclude.indptr[q + 1];
        cursor[q - q0] = std::lower_bound(a, b, first) - exclude.indices;
      }
    }

    RowMatrix S(qgrid.width, igrid.width);
    for (std::int64_t ib = b0; ib < b1; ++ib) {
      const std::int64_t i0 = igrid.begin(ib), i1 = igrid.end(ib), is = igrid.start(ib);
      S.noalias() = Q.middleRows(qs, qgrid.width) * X.middleRows(is, igrid.width).transpose();
      for (std::int64_t q = q0; q < q1; ++q) {
        float* row = S.row(q - qs).data() + (i0 - is);
        const std::int64_t n = i1 - i0;
        if (cosine) {
          const float iq = inv_q[q];
          const float* ix = inv_x.data() + i0;
          for (std::int64_t j = 0; j < n; ++j) row[j] *= iq * ix[j];
        }
        if (exclude.present()) {
          std::int64_t& p = cursor[q - q0];
          const std::int64_t end = exclude.indptr[q + 1];
          for (; p < end && exclude.indices[p] < i1; ++p) row[exclude.indices[p] - i0] = kNegInf;
        }
        select_row(row, n, i0, tops[q - q0]);
      }
    }

    for (std::int64_t q = q0; q < q1; ++q) {
      if (chunks == 1) {
        tops[q - q0].write(out.ids + q * k, out.scores + q * k);
      } else {
        const std::int64_t off = (q * chunks + chunk) * k;
        tops[q - q0].write(part_ids.data() + off, part_scores.data() + off);
      }
    }
  });

  if (chunks == 1) return;
  const std::int64_t merge_blocks = (nq + kGatherBlock - 1) / kGatherBlock;
  parallel_tasks(merge_blocks, num_threads, stop, [&](std::int64_t t) {
    std::vector<Entry> all(static_cast<std::size_t>(chunks * k));
    for (std::int64_t q = t * kGatherBlock; q < std::min(nq, (t + 1) * kGatherBlock); ++q) {
      const std::int64_t off = q * chunks * k;
      for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = {part_scores[off + i], part_ids[off + i]};
      }
      std::partial_sort(all.begin(), all.begin() + k, all.end(),
                        [](const Entry& a, const Entry& b) {
                          // Padding (id -1) always sorts last.
                          if ((a.id < 0) != (b.id < 0)) return b.id < 0;
                          return better(a, b);
                        });
      for (int i = 0; i < k; ++i) {
        out.ids[q * k + i] = all[i].id;
        out.scores[q * k + i] = all[i].id < 0 ? kNegInf : all[i].score;
      }
    }
  });
}

void topk_candidates(MatrixView queries, MatrixView items, CsrView candidates, int k, Metric metric,
                     CsrView exclude, int num_threads, TopKOutput out, const StopCheck& stop) {
  check_common(queries, items, k, exclude, out);
  if (!candidates.present()) throw std::invalid_argument("candidates are missing");
  check_csr(candidates, queries.rows, items.rows, "candidates");
  const std::int64_t nq = queries.rows, dim = queries.cols;
  const bool cosine = metric == Metric::cosine;

  parallel_tasks((nq + kGatherBlock - 1) / kGatherBlock, num_threads, stop, [&](std::int64_t t) {
    TopK top(k);
    for (std::int64_t q = t * kGatherBlock; q < std::min(nq, (t + 1) * kGatherBlock); ++q) {
      const ConstVectorMap query(queries.row(q), dim);
      const float qnorm = cosine ? query.norm() : 1.0f;
      std::int64_t e = exclude.present() ? exclude.indptr[q] : 0;
      const std::int64_t e_end = exclude.present() ? exclude.indptr[q + 1] : 0;
      std::int32_t previous = -1;
      for (std::int64_t p = candidates.indptr[q]; p < candidates.indptr[q + 1]; ++p) {
        const std::int32_t j = candidates.indices[p];
        if (j == previous) continue;  // duplicate candidate
        previous = j;
        while (e < e_end && exclude.indices[e] < j) ++e;
        if (e < e_end && exclude.indices[e] == j) continue;
        const ConstVectorMap item(items.row(j), dim);
        float s = query.dot(item);
        if (cosine) {
          const float denom = qnorm * item.norm();
          s = denom > 0.0f ? s / denom : 0.0f;
        }
        if (s > top.threshold()) top.push(s, j);
      }
      top.write(out.ids + q * k, out.scores + q * k);
    }
  });
}

}  // namespace semrec
