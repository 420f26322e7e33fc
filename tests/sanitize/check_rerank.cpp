// semrec::mmr against the greedy MMR rule evaluated in double here, step by step along the
// kernel's own picks (so a near-tie that rounding decides either way is not a failure).
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "semrec/rerank.hpp"

namespace checks {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void mmr_case(Rng& rng, std::int64_t rows, std::int64_t width, std::int64_t n_items,
              std::int64_t dim, int k, double lambda) {
  const std::vector<float> emb = unit_rows(random_matrix(rng, n_items, dim), n_items, dim);
  std::uniform_int_distribution<std::int32_t> pick(-1, static_cast<std::int32_t>(n_items) - 1);
  std::uniform_real_distribution<float> rel(-1.0f, 3.0f);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(rows * width));
  std::vector<float> relevance(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = pick(rng);  // -1 padding and repeated ids included
    relevance[i] = rel(rng);
  }
  std::vector<std::int32_t> out_ids(static_cast<std::size_t>(rows * k), 7);
  std::vector<float> out_rel(out_ids.size(), 7.0f);
  std::vector<std::int32_t> out_pos(out_ids.size(), 7);
  semrec::mmr({ids.data(), relevance.data(), rows, width}, view(emb, n_items, dim), k, lambda, 2,
              {out_ids.data(), out_rel.data(), out_pos.data()});
  const std::string label = "mmr rows=" + std::to_string(rows) + " width=" + std::to_string(width) +
                            " k=" + std::to_string(k) + " lambda=" + std::to_string(lambda);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int32_t* cid = ids.data() + r * width;
    const float* crel = relevance.data() + r * width;
    std::vector<char> used(static_cast<std::size_t>(n_items), 0);
    std::int64_t distinct = 0;
    for (std::int64_t j = 0; j < width; ++j) {
      if (cid[j] >= 0 && !used[cid[j]]) {
        used[cid[j]] = 1;
        ++distinct;
      }
    }
    std::fill(used.begin(), used.end(), 0);
    const std::int64_t expected = std::min<std::int64_t>(k, distinct);
    std::vector<std::int32_t> picked;
    bool ok = true;
    for (std::int64_t t = 0; t < expected && ok; ++t) {
      // The best MMR value any candidate still has, given the picks so far.
      auto value_of = [&](std::int64_t j) {
        if (t == 0) return static_cast<double>(crel[j]);
        double max_sim = kNegInf;
        for (std::int32_t p : picked) {
          max_sim = std::max(max_sim, dot(emb.data() + cid[j] * dim, emb.data() + p * dim, dim));
        }
        return lambda * crel[j] - (1.0 - lambda) * max_sim;
      };
      double best = kNegInf;
      for (std::int64_t j = 0; j < width; ++j) {
        if (cid[j] >= 0 && !used[cid[j]]) best = std::max(best, value_of(j));
      }
      const std::int32_t pos = out_pos[r * k + t];
      ok = pos >= 0 && pos < width && cid[pos] == out_ids[r * k + t] && cid[pos] >= 0 &&
           !used[cid[pos]] && out_rel[r * k + t] == crel[pos] && value_of(pos) >= best - 1e-5;
      if (ok) {
        used[cid[pos]] = 1;
        picked.push_back(cid[pos]);
      }
    }
    for (std::int64_t t = expected; ok && t < k; ++t) {
      ok = out_ids[r * k + t] == -1 && out_pos[r * k + t] == -1 && std::isinf(out_rel[r * k + t]);
    }
    EXPECT(ok, label + " row " + std::to_string(r) + ": each pick maximises the MMR value");
  }
}

}  // namespace

void check_rerank(Rng& rng) {
  for (double lambda : {0.0, 0.3, 0.7, 1.0}) {
    mmr_case(rng, 1, 1, 1, 1, 1, lambda);
    mmr_case(rng, 5, 10, 8, 4, 5, lambda);
    mmr_case(rng, 40, 50, 200, 32, 10, lambda);
    mmr_case(rng, 17, 7, 30, 16, 12, lambda);  // k above the candidates: padding
    mmr_case(rng, 0, 5, 10, 3, 2, lambda);
  }
  const std::vector<float> emb = random_matrix(rng, 3, 2);
  const std::vector<std::int32_t> ids{0, 1, 5};
  const std::vector<float> rel{1.0f, 2.0f, 3.0f};
  std::vector<std::int32_t> out_ids(3);
  std::vector<float> out_rel(3);
  const semrec::RerankOutput out{out_ids.data(), out_rel.data(), nullptr};
  EXPECT_THROWS(std::out_of_range,
                semrec::mmr({ids.data(), rel.data(), 1, 3}, view(emb, 3, 2), 2, 0.5, 1, out),
                "mmr candidate id out of range");
  EXPECT_THROWS(std::invalid_argument,
                semrec::mmr({ids.data(), rel.data(), 1, 2}, view(emb, 3, 2), 0, 0.5, 1, out),
                "mmr k=0");
  EXPECT_THROWS(std::invalid_argument,
                semrec::mmr({ids.data(), rel.data(), 1, 2}, view(emb, 3, 2), 2, 1.5, 1, out),
                "mmr lambda above 1");
  EXPECT_THROWS(std::invalid_argument,
                semrec::mmr({ids.data(), rel.data(), 1, 2}, view(emb, 3, 2), 2, NAN, 1, out),
                "mmr lambda NaN");
}

}  // namespace checks
