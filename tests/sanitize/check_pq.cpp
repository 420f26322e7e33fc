// semrec::pq (the PQIndex scan) against a plain re-implementation here: tables rounded in double,
// integer sums, items ranked with ties to the lower id; codes packed and unpacked, nearest
// centroids. Odd shapes on purpose: m not a multiple of 4, partial blocks, depth above n.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "semrec/pq_scan.hpp"

namespace checks {

namespace {

std::vector<std::int32_t> reference(const float* q, const std::vector<float>& book,
                                    const std::vector<std::uint8_t>& codes, std::int64_t n,
                                    std::int64_t m, std::int64_t dsub, std::int64_t depth) {
  std::vector<double> dots(static_cast<std::size_t>(m * 16));
  double widest = 0.0;
  for (std::int64_t s = 0; s < m; ++s) {
    for (int c = 0; c < 16; ++c) {
      dots[s * 16 + c] = dot(q + s * dsub, book.data() + (s * 16 + c) * dsub, dsub);
    }
    const auto [lo, hi] = std::minmax_element(dots.begin() + s * 16, dots.begin() + s * 16 + 16);
    widest = std::max(widest, *hi - *lo);
  }
  // 63 levels: the scan adds 4 lookups in bytes (255 / 4)
  const double levels = static_cast<double>(std::min<std::int64_t>(63, 32767 / ((m + 3) / 4 * 4)));
  std::vector<long> sums(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t s = 0; s < m; ++s) {
      const double lo = *std::min_element(dots.begin() + s * 16, dots.begin() + s * 16 + 16);
      const double v = dots[s * 16 + codes[i * m + s]] - lo;
      sums[i] += widest > 0
                     ? static_cast<long>(std::min(levels, std::nearbyint(v / (widest / levels))))
                     : 0;
    }
  }
  std::vector<std::int32_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return sums[a] > sums[b]; });
  order.resize(static_cast<std::size_t>(std::min(n, depth)));
  order.resize(static_cast<std::size_t>(depth), -1);
  return order;
}

void search_case(Rng& rng, std::int64_t n, std::int64_t m, std::int64_t dsub, std::int64_t nq,
                 std::int64_t depth, int threads) {
  std::vector<float> book = random_matrix(rng, m * 16, dsub);
  std::uniform_int_distribution<int> code(0, 15);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(n * m));
  for (auto& c : codes) c = static_cast<std::uint8_t>(code(rng));
  std::vector<std::uint8_t> blocks(static_cast<std::size_t>(
      (n + semrec::pq::kBlock - 1) / semrec::pq::kBlock * semrec::pq::block_bytes(m)));
  const std::int64_t half = n / 3;  // packed in two parts, the second from inside a block
  semrec::pq::pack(codes.data(), half, m, blocks.data(), 0);
  semrec::pq::pack(codes.data() + half * m, n - half, m, blocks.data(), half);
  std::vector<std::uint8_t> back(codes.size());
  semrec::pq::unpack(blocks.data(), 0, n, m, back.data());
  const std::string label = "pq n=" + std::to_string(n) + " m=" + std::to_string(m) +
                            " nq=" + std::to_string(nq) + " depth=" + std::to_string(depth) +
                            " threads=" + std::to_string(threads);
  EXPECT(back == codes, label + ": unpack(pack(codes)) == codes");
  const std::vector<float> queries = random_matrix(rng, nq, m * dsub);
  std::vector<std::int32_t> out(static_cast<std::size_t>(nq * depth), 7);
  const semrec::pq::Codebook cb{book.data(), m, dsub};
  semrec::pq::search(queries.data(), nq, cb, blocks.data(), n, depth, threads, out.data(), {});
  for (std::int64_t q = 0; q < nq; ++q) {
    const auto want = reference(queries.data() + q * m * dsub, book, codes, n, m, dsub, depth);
    EXPECT(std::equal(want.begin(), want.end(), out.begin() + q * depth),
           label + " query " + std::to_string(q) + ": the reference's ranking");
  }
  std::vector<std::uint8_t> nearest(static_cast<std::size_t>(nq * m));
  semrec::pq::encode(queries.data(), nq, cb, threads, nearest.data(), {});
  bool ok = true;  // the picked centroid is the nearest, up to float rounding (in double here)
  for (std::int64_t q = 0; q < nq; ++q) {
    for (std::int64_t s = 0; s < m; ++s) {
      const float* x = queries.data() + q * m * dsub + s * dsub;
      auto distance = [&](int c) {
        double d = 0.0;
        for (std::int64_t j = 0; j < dsub; ++j) {
          const double diff = static_cast<double>(x[j]) - book[(s * 16 + c) * dsub + j];
          d += diff * diff;
        }
        return d;
      };
      double best = INFINITY;
      for (int c = 0; c < 16; ++c) best = std::min(best, distance(c));
      ok = ok && distance(nearest[q * m + s]) <= best + 1e-5 * (1.0 + best);
    }
  }
  EXPECT(ok, label + ": encode picks the nearest centroid");
}

}  // namespace

void check_pq(Rng& rng) {
  search_case(rng, 1, 1, 1, 1, 1, 1);
  search_case(rng, 31, 5, 3, 2, 40, 2);  // depth above n: -1 padding
  search_case(rng, 1000, 13, 2, 1, 100, 2);
  search_case(rng, 1000, 16, 4, 3, 64, 2);
  search_case(rng, 777, 7, 5, 5, 777, 1);
  search_case(rng, 2049, 96, 4, 1, 300, 2);
  const std::vector<float> book(16, 0.0f), q(1, 0.0f);
  std::vector<std::uint8_t> blocks(static_cast<std::size_t>(semrec::pq::block_bytes(1)));
  std::vector<std::int32_t> out(4);
  semrec::pq::search(q.data(), 1, {book.data(), 1, 1}, blocks.data(), 3, 4, 2, out.data(), {});
  EXPECT(out == (std::vector<std::int32_t>{0, 1, 2, -1}), "pq: equal scores rank by id");
  EXPECT_THROWS(
      std::invalid_argument,
      semrec::pq::search(q.data(), 1, {book.data(), 1, 1}, blocks.data(), 3, 0, 1, out.data(), {}),
      "pq depth=0");
}

}  // namespace checks
