// semrec::neighbour_graph, neighbour_topk and neighbour_scores against sparse products computed
// in double here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "semrec/knn.hpp"

namespace checks {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

Csr transpose(const Csr& m) {
  Csr t;
  t.rows = m.cols;
  t.cols = m.rows;
  t.indptr.assign(static_cast<std::size_t>(m.cols) + 1, 0);
  for (std::int32_t c : m.indices) ++t.indptr[c + 1];
  for (std::int64_t c = 0; c < m.cols; ++c) t.indptr[c + 1] += t.indptr[c];
  t.indices.resize(m.indices.size());
  t.values.resize(m.values.size());
  std::vector<std::int64_t> next(t.indptr.begin(), t.indptr.end() - 1);
  for (std::int64_t r = 0; r < m.rows; ++r) {
    for (std::int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) {
      const std::int64_t at = next[m.indices[p]]++;
      t.indices[at] = static_cast<std::int32_t>(r);
      t.values[at] = m.values[p];
    }
  }
  return t;
}

// Dense row r of m in double.
std::vector<double> dense_row(const Csr& m, std::int64_t r) {
  std::vector<double> out(static_cast<std::size_t>(m.cols), 0.0);
  for (std::int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) out[m.indices[p]] += m.values[p];
  return out;
}

Csr with_values(Rng& rng, std::int64_t rows, std::int64_t cols, double density, bool few) {
  Csr m = random_csr(rng, rows, cols, density, 0.1f, 3.0f);
  if (few) {
    for (float& v : m.values) v = std::ceil(v);  // 1, 2 or 3: the packed 4-byte cell path
  }
  return m;
}

void graph_case(Rng& rng, std::int64_t n, std::int64_t d, double density, int k, float shrink,
                bool few) {
  const Csr m = with_values(rng, n, d, density, few);  // rows are the entities compared
  const Csr mt = transpose(m);
  std::vector<float> norms(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    const auto row = dense_row(m, r);
    double s = 0.0;
    for (double v : row) s += v * v;
    norms[r] = static_cast<float>(std::sqrt(s));
  }
  std::vector<std::int32_t> self(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) self[r] = static_cast<std::int32_t>(r);
  const semrec::CsrResult g =
      semrec::neighbour_graph(m.values_view(), mt.values_view(), norms.data(), norms.data(),
                              self.data(), nullptr, {k, shrink}, 2);
  const std::string label = "neighbour_graph n=" + std::to_string(n) + " d=" + std::to_string(d) +
                            " k=" + std::to_string(k) + (few ? " packed" : " wide");
  EXPECT(static_cast<std::int64_t>(g.indptr.size()) == n + 1, label + ": indptr size");
  for (std::int64_t r = 0; r < n; ++r) {
    const auto a = dense_row(m, r);
    std::vector<double> sims(static_cast<std::size_t>(n), kNegInf);
    std::int64_t positive = 0;
    for (std::int64_t t = 0; t < n; ++t) {
      if (t == r) continue;
      const auto b = dense_row(m, t);
      double s = 0.0;
      for (std::int64_t c = 0; c < d; ++c) s += a[c] * b[c];
      s /= static_cast<double>(norms[r]) * norms[t] + shrink;
      if (s > 0.0) {
        sims[t] = s;
        ++positive;
      }
    }
    const std::int64_t begin = g.indptr[r], end = g.indptr[r + 1];
    bool ok = end - begin == std::min<std::int64_t>(k, positive);
    double lowest = std::numeric_limits<double>::infinity();
    for (std::int64_t p = begin; ok && p < end; ++p) {
      const std::int32_t t = g.indices[p];
      ok = t >= 0 && t < n && sims[t] != kNegInf && near(g.values[p], sims[t], 1e-5) &&
           (p == begin || t > g.indices[p - 1]);
      if (ok) lowest = std::min(lowest, sims[t]);
    }
    for (std::int64_t t = 0; ok && t < n; ++t) {
      const bool kept = std::binary_search(g.indices.begin() + begin, g.indices.begin() + end,
                                           static_cast<std::int32_t>(t));
      if (!kept && sims[t] != kNegInf) ok = sims[t] <= lowest + 1e-5 * (1.0 + lowest);
    }
    EXPECT(ok, label + " row " + std::to_string(r) + ": the k most similar, ascending ids");
  }
}

void topk_case(Rng& rng, std::int64_t nq, std::int64_t d, std::int64_t n_items, double density,
               int k, bool candidates, bool few) {
  const Csr history = with_values(rng, nq, d, density, few);
  const Csr graph = with_values(rng, d, n_items, density, few);
  const Csr exclude = random_csr(rng, nq, n_items, 0.2, 1.0f, 1.0f);
  std::vector<std::int32_t> cand;
  for (std::int64_t j = 0; j < n_items; j += 3) cand.push_back(static_cast<std::int32_t>(j));
  std::vector<std::int32_t> ids(static_cast<std::size_t>(nq * k));
  std::vector<float> scores(ids.size());
  semrec::neighbour_topk(history.values_view(), graph.values_view(), k, exclude.view(),
                         candidates ? cand.data() : nullptr, static_cast<std::int64_t>(cand.size()),
                         2, {ids.data(), scores.data()});
  // The dense scores score() returns: the double product here, and bitwise what topk ranked.
  std::vector<float> dense(static_cast<std::size_t>(nq * n_items), 7.0f);
  semrec::neighbour_scores(history.values_view(), graph.values_view(), 2, dense.data());
  for (std::int64_t r = 0; r < nq; ++r) {
    const auto h = dense_row(history, r);
    std::vector<double> ref(static_cast<std::size_t>(n_items), 0.0);
    for (std::int64_t c = 0; c < d; ++c) {
      const auto g = dense_row(graph, c);
      for (std::int64_t j = 0; j < n_items; ++j) ref[j] += h[c] * g[j];
    }
    bool same = true;
    for (std::int64_t j = 0; j < n_items; ++j)
      same = same && near(dense[r * n_items + j], ref[j], 1e-5);
    for (std::int64_t t = 0; t < k && ids[r * k + t] >= 0; ++t) {
      same = same && scores[r * k + t] == dense[r * n_items + ids[r * k + t]];
    }
    EXPECT(same, "neighbour_scores row " + std::to_string(r) + ": the product, topk's scores");
    for (std::int64_t j = 0; j < n_items; ++j) {
      const bool allowed = !candidates || j % 3 == 0;
      if (!allowed || exclude.contains(r, static_cast<std::int32_t>(j))) ref[j] = kNegInf;
    }
    check_topk_row(ref, ids.data() + r * k, scores.data() + r * k, k, 1e-5,
                   "neighbour_topk nq=" + std::to_string(nq) + " items=" + std::to_string(n_items) +
                       " k=" + std::to_string(k) + " row " + std::to_string(r));
  }
}

}  // namespace

void check_knn(Rng& rng) {
  for (bool few : {false, true}) {
    graph_case(rng, 1, 1, 1.0, 1, 0.0f, few);
    graph_case(rng, 30, 12, 0.3, 5, 0.0f, few);
    graph_case(rng, 90, 40, 0.1, 10, 2.0f, few);
    graph_case(rng, 200, 300, 0.02, 20, 0.0f, few);
    graph_case(rng, 60, 8, 0.6, 100, 0.5f, few);  // k above the row count
    topk_case(rng, 1, 1, 1, 1.0, 1, false, few);
    topk_case(rng, 20, 30, 50, 0.2, 5, false, few);
    topk_case(rng, 20, 30, 50, 0.2, 5, true, few);
    topk_case(rng, 40, 60, 500, 0.05, 10, false, few);
    topk_case(rng, 33, 100, 400, 0.3, 60, true, few);
    topk_case(rng, 5, 10, 20, 0.0, 7, false, few);  // nothing reaches anything: zeros compete
  }

  const Csr m = random_csr(rng, 4, 3, 1.0, 1.0f, 2.0f);
  const Csr mt = transpose(m);
  std::vector<float> norms(4, 1.0f);
  EXPECT_THROWS(std::invalid_argument,
                semrec::neighbour_graph(m.values_view(), mt.values_view(), norms.data(),
                                        norms.data(), nullptr, nullptr, {0, 0.0f}, 1),
                "neighbour_graph k=0");
  EXPECT_THROWS(std::invalid_argument,
                semrec::neighbour_graph(m.values_view(), mt.values_view(), norms.data(),
                                        norms.data(), nullptr, nullptr, {2, -1.0f}, 1),
                "neighbour_graph negative shrink");
  EXPECT_THROWS(std::invalid_argument,
                semrec::neighbour_graph(m.values_view(), m.values_view(), norms.data(),
                                        norms.data(), nullptr, nullptr, {2, 0.0f}, 1),
                "neighbour_graph shape mismatch");
  Csr bad = m;
  bad.indices[2] = 9;
  EXPECT_THROWS(std::out_of_range,
                semrec::neighbour_graph(bad.values_view(), mt.values_view(), norms.data(),
                                        norms.data(), nullptr, nullptr, {2, 0.0f}, 1),
                "neighbour_graph column out of range");
  std::vector<std::int32_t> ids(8);
  std::vector<float> scores(8);
  std::vector<std::int32_t> unsorted{2, 1};
  EXPECT_THROWS(std::invalid_argument,
                semrec::neighbour_topk(m.values_view(), mt.values_view(), 2, {}, unsorted.data(), 2,
                                       1, {ids.data(), scores.data()}),
                "neighbour_topk unsorted candidates");
  std::vector<float> dense(12);
  EXPECT_THROWS(std::invalid_argument,
                semrec::neighbour_scores(m.values_view(), m.values_view(), 1, dense.data()),
                "neighbour_scores shape mismatch");
  EXPECT_THROWS(std::invalid_argument,
                semrec::neighbour_topk(m.values_view(), m.values_view(), 2, {}, nullptr, 0, 1,
                                       {ids.data(), scores.data()}),
                "neighbour_topk shape mismatch");
}

}  // namespace checks
