// semrec's metric kernels against PROTOCOL.md's definitions evaluated here, user by user.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "semrec/metrics.hpp"

namespace checks {

namespace {

std::vector<std::int32_t> random_lists(Rng& rng, std::int64_t rows, std::int64_t width,
                                       std::int64_t n_items) {
  // Distinct ids per list (metrics assume it), then some padding at the end.
  std::vector<std::int32_t> out(static_cast<std::size_t>(rows * width), -1);
  std::vector<std::int32_t> all(static_cast<std::size_t>(n_items));
  for (std::int64_t i = 0; i < n_items; ++i) all[i] = static_cast<std::int32_t>(i);
  std::uniform_int_distribution<std::int64_t> fill(0, width);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::shuffle(all.begin(), all.end(), rng);
    const std::int64_t n = std::min<std::int64_t>(fill(rng), std::min(width, n_items));
    std::copy(all.begin(), all.begin() + n, out.begin() + r * width);
  }
  return out;
}

void ranking_case(Rng& rng, std::int64_t rows, std::int64_t width, std::int64_t n_items,
                  std::vector<int> cutoffs) {
  const auto lists = random_lists(rng, rows, width, n_items);
  const Csr relevant = random_csr(rng, rows, n_items, 0.2, 1.0f, 1.0f);
  const auto n_cut = static_cast<std::int64_t>(cutoffs.size());
  std::vector<double> out(static_cast<std::size_t>(rows * n_cut * semrec::n_ranking_metrics));
  semrec::ranking_metrics({lists.data(), rows, width}, relevant.view(), cutoffs, 2, out.data(), {});
  bool ok = true;
  for (std::int64_t u = 0; u < rows; ++u) {
    const double n_rel = static_cast<double>(relevant.indptr[u + 1] - relevant.indptr[u]);
    for (std::int64_t c = 0; c < n_cut; ++c) {
      const int k = cutoffs[c];
      double hits = 0, dcg = 0, ap = 0, rr = 0, idcg = 0;
      for (int r = 0; r < k; ++r) {
        const std::int32_t item = lists[u * width + r];
        if (item < 0 || !relevant.contains(u, item)) continue;
        hits += 1;
        dcg += 1.0 / std::log2(r + 2.0);
        ap += hits / (r + 1);
        if (rr == 0) rr = 1.0 / (r + 1);
      }
      const double denom = std::min<double>(n_rel, k);
      for (int r = 0; r < denom; ++r) idcg += 1.0 / std::log2(r + 2.0);
      const double want[] = {n_rel ? hits / k : 0,        n_rel ? hits / n_rel : 0,
                             n_rel ? dcg / idcg : 0,      n_rel ? ap / denom : 0,
                             n_rel && hits > 0 ? 1.0 : 0, n_rel ? rr : 0};
      const double* got = out.data() + (u * n_cut + c) * semrec::n_ranking_metrics;
      for (int m = 0; m < semrec::n_ranking_metrics; ++m) ok = ok && near(got[m], want[m], 1e-12);
    }
  }
  EXPECT(ok, "ranking_metrics rows=" + std::to_string(rows) + " width=" + std::to_string(width));

  // Coverage, novelty-style means and diversity over the same lists.
  const int k = cutoffs.back();
  std::set<std::int32_t> seen;
  for (std::int64_t u = 0; u < rows; ++u) {
    for (int r = 0; r < k; ++r) {
      if (lists[u * width + r] >= 0) seen.insert(lists[u * width + r]);
    }
  }
  EXPECT(semrec::distinct_items({lists.data(), rows, width}, k, n_items) ==
             static_cast<std::int64_t>(seen.size()),
         "distinct_items");
  std::vector<double> value(static_cast<std::size_t>(n_items));
  std::uniform_real_distribution<double> any(0.0, 10.0);
  for (double& v : value) v = any(rng);
  const std::int64_t dim = 5;
  const std::vector<float> emb = unit_rows(random_matrix(rng, n_items, dim), n_items, dim);
  std::vector<double> inverse(static_cast<std::size_t>(n_items));
  for (std::int64_t i = 0; i < n_items; ++i) {
    const double norm = std::sqrt(dot(emb.data() + i * dim, emb.data() + i * dim, dim));
    inverse[static_cast<std::size_t>(i)] = norm > 0 ? 1.0 / norm : 0.0;
  }
  std::vector<double> means(static_cast<std::size_t>(rows)), div(means.size());
  semrec::mean_item_value({lists.data(), rows, width}, k, value, 2, means.data(), {});
  semrec::intra_list_diversity({lists.data(), rows, width}, k, view(emb, n_items, dim), inverse, 2,
                               div.data(), {});
  bool means_ok = true, div_ok = true;
  for (std::int64_t u = 0; u < rows; ++u) {
    std::vector<std::int32_t> items;
    for (int r = 0; r < k; ++r) {
      if (lists[u * width + r] >= 0) items.push_back(lists[u * width + r]);
    }
    double sum = 0.0, pairs = 0.0, distance = 0.0;
    for (auto i : items) sum += value[i];
    for (std::size_t a = 0; a < items.size(); ++a) {
      for (std::size_t b = a + 1; b < items.size(); ++b) {
        const double cosine = dot(emb.data() + items[a] * dim, emb.data() + items[b] * dim, dim) *
                              inverse[items[a]] * inverse[items[b]];
        distance += std::clamp(1.0 - cosine, 0.0, 2.0);
        pairs += 1;
      }
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    means_ok = means_ok && near(means[u], items.empty() ? nan : sum / items.size(), 1e-12);
    div_ok = div_ok && near(div[u], items.size() < 2 ? nan : distance / pairs, 1e-9);
  }
  EXPECT(means_ok, "mean_item_value");
  EXPECT(div_ok, "intra_list_diversity");
}

}  // namespace

void check_metrics(Rng& rng) {
  ranking_case(rng, 1, 1, 1, {1});
  ranking_case(rng, 50, 10, 30, {1, 5, 10});
  ranking_case(rng, 1100, 20, 400, {3, 20});  // several tasks
  ranking_case(rng, 0, 5, 10, {5});

  const std::vector<std::int32_t> lists{0, 1, 9, -1};
  const Csr relevant = random_csr(rng, 2, 3, 0.5, 1.0f, 1.0f);
  std::vector<double> out(2 * semrec::n_ranking_metrics);
  const std::vector<int> too_big{3}, fine{2};
  EXPECT_THROWS(
      std::invalid_argument,
      semrec::ranking_metrics({lists.data(), 2, 2}, relevant.view(), too_big, 1, out.data(), {}),
      "ranking_metrics cutoff above the width");
  EXPECT_THROWS(
      std::invalid_argument,
      semrec::ranking_metrics({lists.data(), 1, 4}, relevant.view(), fine, 1, out.data(), {}),
      "ranking_metrics row count mismatch");
  EXPECT_THROWS(std::out_of_range, semrec::distinct_items({lists.data(), 2, 2}, 2, 3),
                "distinct_items id out of range");
  std::vector<double> value(3, 1.0), means(2);
  EXPECT_THROWS(std::out_of_range,
                semrec::mean_item_value({lists.data(), 2, 2}, 2, value, 1, means.data(), {}),
                "mean_item_value id out of range");
  EXPECT_THROWS(std::invalid_argument,
                semrec::mean_item_value({lists.data(), 2, 2}, 0, value, 1, means.data(), {}),
                "mean_item_value k=0");
}

}  // namespace checks
