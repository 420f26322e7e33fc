// Seeded streams for the trainers: shuffling and sampling fully determined by (seed, epoch, ...),
// whatever the thread count.
#pragma once

#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace semrec::train {

// splitmix64: tiny, fast, and a stream is fully determined by its 64-bit seed.
struct SplitMix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by multiply-shift (bias below n / 2^64).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
};

// A seed for stream (a, b) of `seed`.
inline std::uint64_t derive(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
  SplitMix s{seed ^ (a * 0xD1B54A32D192ED03ull) ^ (b * 0x8CB92BA72F3D8DD7ull)};
  s.next();
  return s.next();
}

// 0 .. total - 1 in the order of epoch `epoch` (Fisher-Yates on stream (seed, epoch)).
inline std::vector<std::int64_t> epoch_order(std::int64_t total, std::uint64_t seed,
                                             std::int64_t epoch) {
  std::vector<std::int64_t> perm(total);
  std::iota(perm.begin(), perm.end(), std::int64_t{0});
  SplitMix shuffle{derive(seed, static_cast<std::uint64_t>(epoch))};
  for (std::int64_t i = total - 1; i > 0; --i) {
    std::swap(perm[i], perm[shuffle.below(static_cast<std::uint64_t>(i + 1))]);
  }
  return perm;
}

}  // namespace semrec::train
