// semrec::topk and topk_candidates against scores computed in double here.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "harness.hpp"

namespace checks {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

std::vector<double> reference_row(const std::vector<float>& q, std::int64_t qi,
                                  const std::vector<float>& x, std::int64_t n, std::int64_t d,
                                  semrec::Metric metric) {
  std::vector<double> out(static_cast<std::size_t>(n));
  const float* query = q.data() + qi * d;
  const double qn = std::sqrt(dot(query, query, d));
  for (std::int64_t i = 0; i < n; ++i) {
    const float* item = x.data() + i * d;
    double s = dot(query, item, d);
    if (metric == semrec::Metric::cosine) {
      const double xn = std::sqrt(dot(item, item, d));
      s = qn == 0.0 || xn == 0.0 ? 0.0 : s / (qn * xn);
    }
    out[static_cast<std::size_t>(i)] = s;
  }
  return out;
}

void one_case(Rng& rng, std::int64_t nq, std::int64_t n, std::int64_t d, int k, bool exclude,
              bool candidates) {
  std::vector<float> q = random_matrix(rng, nq, d);
  std::vector<float> x = random_matrix(rng, n, d);
  if (n > 3) {  // an exact duplicate and a zero vector: ties and the cosine zero rule
    std::copy(x.begin(), x.begin() + d, x.begin() + 2 * d);
    std::fill(x.begin() + d, x.begin() + 2 * d, 0.0f);
  }
  const Csr ex = exclude ? random_csr(rng, nq, n, 0.2, 1.0f, 1.0f) : Csr{};
  const Csr cand = random_csr(rng, nq, n, 0.3, 1.0f, 1.0f);
  for (auto metric : {semrec::Metric::dot, semrec::Metric::cosine}) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(nq * k), 7);
    std::vector<float> scores(static_cast<std::size_t>(nq * k), 7.0f);
    const semrec::CsrView ex_view = exclude ? ex.view() : semrec::CsrView{};
    if (candidates) {
      semrec::topk_candidates(view(q, nq, d), view(x, n, d), cand.view(), k, metric, ex_view, 2,
                              {ids.data(), scores.data()});
    } else {
      semrec::topk(view(q, nq, d), view(x, n, d), k, metric, ex_view, 2,
                   {ids.data(), scores.data()});
    }
    for (std::int64_t qi = 0; qi < nq; ++qi) {
      std::vector<double> ref = reference_row(q, qi, x, n, d, metric);
      for (std::int64_t i = 0; i < n; ++i) {
        const auto c = static_cast<std::int32_t>(i);
        if ((exclude && ex.contains(qi, c)) || (candidates && !cand.contains(qi, c))) {
          ref[static_cast<std::size_t>(i)] = kNegInf;
        }
      }
      const std::string label = std::string(candidates ? "topk_candidates" : "topk") +
                                (metric == semrec::Metric::dot ? " dot" : " cosine") +
                                " nq=" + std::to_string(nq) + " n=" + std::to_string(n) +
                                " d=" + std::to_string(d) + " k=" + std::to_string(k);
      check_topk_row(ref, ids.data() + qi * k, scores.data() + qi * k, k, 1e-4, label);
    }
  }
}

// Prepared items in every storage (the few-query paths: float16 and int8 scans, then exact
// float32 re-scoring) against the double reference and bitwise against the plain matrix search.
void prepared_case(Rng& rng, std::int64_t nq, std::int64_t n, std::int64_t d, int k, bool exclude) {
  std::vector<float> q = random_matrix(rng, nq, d);
  std::vector<float> x = random_matrix(rng, n, d);
  if (n > 3) std::copy(x.begin(), x.begin() + d, x.begin() + 2 * d);  // an exact tie
  const Csr ex = exclude ? random_csr(rng, nq, n, 0.2, 1.0f, 1.0f) : Csr{};
  const semrec::CsrView ex_view = exclude ? ex.view() : semrec::CsrView{};
  const auto size = static_cast<std::size_t>(nq * k);
  for (auto metric : {semrec::Metric::dot, semrec::Metric::cosine}) {
    std::vector<std::int32_t> plain_ids(size);
    std::vector<float> plain_scores(size);
    semrec::topk(view(q, nq, d), view(x, n, d), k, metric, ex_view, 2,
                 {plain_ids.data(), plain_scores.data()});
    for (auto storage :
         {semrec::ItemStorage::float32, semrec::ItemStorage::float16, semrec::ItemStorage::int8}) {
      semrec::PreparedItems items(d, metric, storage);
      items.append(view(x, n, d), 2);
      std::vector<std::int32_t> ids(size, 7);
      std::vector<float> scores(size, 7.0f);
      semrec::topk(view(q, nq, d), items, view(x, n, d), k, ex_view, 2,
                   {ids.data(), scores.data()});
      const std::string label = "prepared storage=" + std::to_string(static_cast<int>(storage)) +
                                " nq=" + std::to_string(nq) + " n=" + std::to_string(n) +
                                " d=" + std::to_string(d) + " k=" + std::to_string(k);
      EXPECT(ids == plain_ids &&
                 std::memcmp(scores.data(), plain_scores.data(), size * sizeof(float)) == 0,
             label + ": bitwise equal to the matrix search");
      for (std::int64_t qi = 0; qi < nq; ++qi) {
        std::vector<double> ref = reference_row(q, qi, x, n, d, metric);
        for (std::int64_t i = 0; i < n; ++i) {
          if (exclude && ex.contains(qi, static_cast<std::int32_t>(i))) {
            ref[static_cast<std::size_t>(i)] = kNegInf;
          }
        }
        check_topk_row(ref, ids.data() + qi * k, scores.data() + qi * k, k, 1e-4, label);
      }
    }
  }
}

// dot_products: every score within the double reference's tolerance, and bitwise the score topk
// returns for that item (a model's score() and recommend() must agree to the last bit).
void dot_products_case(Rng& rng, std::int64_t nq, std::int64_t n, std::int64_t d, int threads) {
  std::vector<float> q = random_matrix(rng, nq, d);
  std::vector<float> x = random_matrix(rng, n, d);
  std::vector<float> dense(static_cast<std::size_t>(nq * n), 7.0f);
  semrec::dot_products(view(q, nq, d), view(x, n, d), threads, dense.data());
  const int k = static_cast<int>(std::max<std::int64_t>(n, 1));
  std::vector<std::int32_t> ids(static_cast<std::size_t>(nq * k));
  std::vector<float> scores(ids.size());
  semrec::topk(view(q, nq, d), view(x, n, d), k, semrec::Metric::dot, {}, threads,
               {ids.data(), scores.data()});
  const std::string label = "dot_products nq=" + std::to_string(nq) + " n=" + std::to_string(n) +
                            " d=" + std::to_string(d) + " threads=" + std::to_string(threads);
  bool close = true, bitwise = true;
  for (std::int64_t qi = 0; qi < nq; ++qi) {
    const std::vector<double> ref = reference_row(q, qi, x, n, d, semrec::Metric::dot);
    for (std::int64_t i = 0; i < n; ++i) {
      const double got = dense[static_cast<std::size_t>(qi * n + i)];
      close =
          close && std::abs(got - ref[static_cast<std::size_t>(i)]) <= 1e-4 * (1 + std::abs(got));
      const std::int32_t id = ids[static_cast<std::size_t>(qi * k + i)];
      const float from_topk = scores[static_cast<std::size_t>(qi * k + i)];
      const float mine = dense[static_cast<std::size_t>(qi * n + id)];
      bitwise = bitwise && std::memcmp(&from_topk, &mine, sizeof(float)) == 0;
    }
  }
  EXPECT(close, label + ": equal to the double reference");
  EXPECT(bitwise, label + ": bitwise the scores topk returns");
}

}  // namespace

void check_similarity(Rng& rng) {
  const struct {
    std::int64_t nq, n, d;
  } dense_shapes[] = {{1, 1, 1},       {3, 5, 7},      {17, 600, 33},
                      {600, 1100, 64}, {13, 300, 384}, {2, 40, 0}};
  for (const auto& s : dense_shapes) {
    for (int threads : {1, 2}) dot_products_case(rng, s.nq, s.n, s.d, threads);
  }

  for (std::int64_t nq : {1, 2, 4, 6}) {
    for (bool exclude : {false, true}) {
      prepared_case(rng, nq, 300, 384, 10, exclude);
      prepared_case(rng, nq, 70, 33, 5, exclude);
    }
  }
  // From 3 MiB of packed items (9000 x 384: 3.4 MiB as int8) one query's scan is split into
  // item ranges that helper threads join.
  for (bool exclude : {false, true}) prepared_case(rng, 1, 9000, 384, 10, exclude);

  const struct {
    std::int64_t nq, n, d;
    int k;
  } shapes[] = {
      {1, 1, 1, 1},      {3, 5, 7, 10},    {17, 100, 33, 5}, {64, 257, 16, 8},
      {5, 700, 100, 20}, {0, 10, 4, 3},    {4, 0, 4, 3},     {40, 300, 384, 10},
      {130, 50, 3, 50},  {9, 2000, 24, 1}, {1, 3000, 40, 10}};  // the last: one long list split
  for (const auto& s : shapes) {
    for (bool exclude : {false, true}) {
      one_case(rng, s.nq, s.n, s.d, s.k, exclude, false);
      one_case(rng, s.nq, s.n, s.d, s.k, exclude, true);
    }
  }

  // Invalid input is refused with the documented exception types.
  std::vector<float> q = random_matrix(rng, 2, 4), x = random_matrix(rng, 3, 4);
  std::vector<std::int32_t> ids(6);
  std::vector<float> scores(6);
  const semrec::TopKOutput out{ids.data(), scores.data()};
  EXPECT_THROWS(std::invalid_argument,
                semrec::topk(view(q, 2, 4), view(x, 3, 4), 0, semrec::Metric::dot, {}, 1, out),
                "topk k=0");
  EXPECT_THROWS(std::invalid_argument,
                semrec::topk(view(q, 2, 4), view(x, 4, 3), 3, semrec::Metric::dot, {}, 1, out),
                "topk dimension mismatch");
  Csr bad = random_csr(rng, 2, 3, 1.0, 1.0f, 1.0f);
  bad.indices[1] = 5;
  EXPECT_THROWS(
      std::out_of_range,
      semrec::topk(view(q, 2, 4), view(x, 3, 4), 3, semrec::Metric::dot, bad.view(), 1, out),
      "topk exclude index out of range");
  Csr unsorted = random_csr(rng, 2, 3, 1.0, 1.0f, 1.0f);
  std::swap(unsorted.indices[0], unsorted.indices[1]);
  EXPECT_THROWS(std::invalid_argument,
                semrec::topk(view(q, 2, 4), view(x, 3, 4), 3, semrec::Metric::cosine,
                             unsorted.view(), 1, out),
                "topk unsorted exclude");
  EXPECT_THROWS(std::invalid_argument,
                semrec::topk(view(q, 2, 4), view(x, 3, 4), 3, semrec::Metric::dot, {}, 0, out),
                "topk num_threads=0");

  // Padded per-query lists: -1 dropped, each row sorted (repeats kept), ids checked.
  const std::int32_t padded[] = {5, -1, 2, 5, -1, -1, -1, -1, 0, 9, 3, -1};
  const semrec::PaddedLists lists = semrec::padded_lists(padded, 3, 4, 10);
  const std::vector<std::int64_t> want_indptr = {0, 3, 3, 6};
  const std::vector<std::int32_t> want_indices = {2, 5, 5, 0, 3, 9};
  EXPECT(lists.indptr == want_indptr && lists.indices == want_indices, "padded_lists rows");
  EXPECT(lists.view().rows == 3 && lists.view().cols == 10, "padded_lists shape");
  EXPECT_THROWS(std::out_of_range, semrec::padded_lists(padded, 3, 4, 9), "padded_lists id 9");
  const std::int32_t below[] = {-2};
  EXPECT_THROWS(std::out_of_range, semrec::padded_lists(below, 1, 1, 9), "padded_lists id -2");
}

}  // namespace checks
