// The bounded top-k selector every ranking kernel uses (similarity search, neighbourhood CF).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace semrec {

template <class Score>
struct BasicScoredId {
  Score score;
  std::int32_t id;
};
using ScoredId = BasicScoredId<float>;

// The ranking order of every result list: higher score first, equal scores by the lower id.
template <class Score>
inline bool ranks_before(const BasicScoredId<Score>& a, const BasicScoredId<Score>& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}
// The same order as a function object, which std::sort and std::nth_element inline (a function
// pointer they call through).
struct RanksBefore {
  template <class Score>
  bool operator()(const BasicScoredId<Score>& a, const BasicScoredId<Score>& b) const {
    return ranks_before(a, b);
  }
};

// The k best entries scoring strictly above a floor (-inf: any number; NaN never enters).
// Entries collect in a buffer of up to 2k; when it fills, a selection keeps the k best and the
// worst of them becomes the bar every later entry must beat. That costs O(1) per entry on
// average, against O(log k) for a heap, which matters for large k. The kept set is unique
// (ranks_before is a strict total order over distinct ids), so it does not depend on the order
// entries arrive in. Scores are float32 (every search) or float64 (Hybrid's blends).
template <class Score>
class BasicTopKSelector {
 public:
  using Entry = BasicScoredId<Score>;

  explicit BasicTopKSelector(int k, Score floor = -std::numeric_limits<Score>::infinity())
      : k_(static_cast<std::size_t>(k)), floor_(floor) {}

  // The score an entry must exceed to enter; one that equals it enters only with a lower id
  // than the bar's (never, when ids arrive in increasing order). A cheap pre-filter.
  Score threshold() const { return full_ ? bar_.score : floor_; }
  bool admits(Score score, std::int32_t id) const {
    return full_ ? ranks_before(Entry{score, id}, bar_) : score > floor_;
  }

  // Adds an entry the caller found admissible (or any entry: the selection sorts it out).
  void push(Score score, std::int32_t id) {
    if (buffer_.capacity() == 0) buffer_.reserve(std::min<std::size_t>(2 * k_, 1 << 16));
    buffer_.push_back({score, id});
    if (buffer_.size() >= 2 * k_) shrink();
  }

  // The kept entries, best first. The caller may read and extend them, then calls reset().
  std::vector<Entry>& finish() {
    shrink();
    std::sort(buffer_.begin(), buffer_.end(), RanksBefore{});
    return buffer_;
  }

  void reset() {
    buffer_.clear();
    full_ = false;
  }

  // Writes the kept entries best first (scores as float32), padded to k with (-1, -inf), and
  // resets.
  void write(std::int32_t* ids, float* scores) {
    finish();
    std::size_t i = 0;
    for (; i < buffer_.size(); ++i) {
      ids[i] = buffer_[i].id;
      scores[i] = static_cast<float>(buffer_[i].score);
    }
    for (; i < k_; ++i) {
      ids[i] = -1;
      scores[i] = -std::numeric_limits<float>::infinity();
    }
    reset();
  }

 private:
  void shrink() {
    if (buffer_.size() <= k_) return;
    std::nth_element(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(k_ - 1),
                     buffer_.end(), RanksBefore{});
    buffer_.resize(k_);
    bar_ = buffer_[k_ - 1];
    full_ = true;
  }

  std::size_t k_;
  Score floor_;
  bool full_ = false;
  Entry bar_{0, 0};
  std::vector<Entry> buffer_;
};
using TopKSelector = BasicTopKSelector<float>;

// The k best scores of a scan that offers items in increasing id order, a block of scores at a
// time: the selection of the batch search, where every score of every query passes through here.
// Because ids only grow, an entry that ties the bar can never enter (its id is higher than every
// kept one), and the buffer stays in id order, so the selection compares plain floats and keeps
// the earliest of tied entries: the kept set is the one TopKSelector keeps. A block of 16 scores
// is compared with the bar at once; the survivors (few, once the bar has risen) are appended
// without a branch per score, and a buffer of about 2k is cut back to k when it fills.
class AscendingTopK {
 public:
  explicit AscendingTopK(int k, float floor = -std::numeric_limits<float>::infinity())
      : k_(static_cast<std::size_t>(k)), cap_(2 * k_ + 32), floor_(floor), bar_(floor) {}

  // Every score that enters is above this (NaN never enters).
  float threshold() const { return bar_; }

  // Offers s[0..n), the scores of items first .. first + n - 1, all above any id offered before.
  void offer(const float* s, std::int64_t n, std::int32_t first) {
    std::int64_t j = 0;
    for (; j + kBlock <= n; j += kBlock) {
      const std::uint32_t mask = above_bar(s + j);
      if (mask == 0) continue;
      append(s + j, mask, first + static_cast<std::int32_t>(j));
    }
    if (j < n) {
      std::uint32_t mask = 0;
      for (std::int64_t t = 0; j + t < n; ++t)
        mask |= static_cast<std::uint32_t>(s[j + t] > bar_) << t;
      if (mask != 0) append(s + j, mask, first + static_cast<std::int32_t>(j));
    }
  }

  // Offers entries (s[i], ids[i]) with increasing ids, all above any id offered before.
  void offer(const float* s, const std::int32_t* ids, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (!(s[i] > bar_)) continue;
      if (size_ + 1 > scores_.size()) grow();
      scores_[size_] = s[i];
      ids_[size_] = ids[i];
      if (++size_ >= cap_) shrink();
    }
  }

  // Writes the kept entries in id order (not ranked), padded to k with (-1, -inf), and starts
  // over: a partial list that another AscendingTopK takes through offer(s, ids, n).
  void write_unranked(std::int32_t* ids, float* scores) {
    shrink();
    std::copy(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(size_), ids);
    std::copy(scores_.begin(), scores_.begin() + static_cast<std::ptrdiff_t>(size_), scores);
    pad(size_, ids, scores);
  }

  // Writes the kept entries best first (ties by the lower id), padded to k with (-1, -inf), and
  // starts over.
  void write(std::int32_t* ids, float* scores) {
    shrink();
    static thread_local std::vector<ScoredId> order;
    order.resize(size_);
    for (std::size_t i = 0; i < size_; ++i) order[i] = {scores_[i], ids_[i]};
    std::sort(order.begin(), order.end(), RanksBefore{});
    for (std::size_t i = 0; i < size_; ++i) {
      ids[i] = order[i].id;
      scores[i] = order[i].score;
    }
    pad(size_, ids, scores);
  }

 private:
  static constexpr std::int64_t kBlock = 16;

  void pad(std::size_t from, std::int32_t* ids, float* scores) {
    std::fill(ids + from, ids + k_, -1);
    std::fill(scores + from, scores + k_, -std::numeric_limits<float>::infinity());
    size_ = 0;
    bar_ = floor_;
  }

  // Bit t set when s[t] > bar.
  std::uint32_t above_bar(const float* s) const {
#if defined(__AVX512F__)
    return _mm512_cmp_ps_mask(_mm512_loadu_ps(s), _mm512_set1_ps(bar_), _CMP_GT_OQ);
#elif defined(__AVX2__)
    const __m256 bar = _mm256_set1_ps(bar_);
    const auto lo = static_cast<std::uint32_t>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s), bar, _CMP_GT_OQ)));
    const auto hi = static_cast<std::uint32_t>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + 8), bar, _CMP_GT_OQ)));
    return lo | hi << 8;
#else
    std::uint32_t mask = 0;
    for (int t = 0; t < kBlock; ++t) mask |= static_cast<std::uint32_t>(s[t] > bar_) << t;
    return mask;
#endif
  }

  // Appends s[t] (id first + t) for every bit t of mask, then cuts back if the buffer is full.
  void append(const float* s, std::uint32_t mask, std::int32_t first) {
    if (size_ + kBlock > scores_.size()) grow();
#if defined(__AVX512F__)
    const auto m = static_cast<__mmask16>(mask);
    const __m512i id =
        _mm512_add_epi32(_mm512_set1_epi32(first),
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    // Compressed into a register, then one full store: the buffer has room for 16 more.
    _mm512_storeu_ps(scores_.data() + size_,
                     _mm512_maskz_compress_ps(m, _mm512_maskz_loadu_ps(m, s)));
    _mm512_storeu_si512(ids_.data() + size_, _mm512_maskz_compress_epi32(m, id));
    size_ += static_cast<std::size_t>(std::popcount(mask));
#else
    for (; mask != 0; mask &= mask - 1) {
      const int t = std::countr_zero(mask);
      scores_[size_] = s[t];
      ids_[size_] = first + t;
      ++size_;
    }
#endif
    if (size_ >= cap_) shrink();
  }

  void grow() {
    const std::size_t room = std::min(cap_, std::max<std::size_t>(2 * scores_.size(), 256));
    scores_.resize(room + kBlock);
    ids_.resize(room + kBlock);
  }

  // Keeps the k best: the k-th largest score becomes the bar; of the entries equal to it, the
  // earliest (lowest ids) are kept. The k-th largest is found by bisection over the floats' order
  // (at most 32 vectorised counting passes, no data-dependent branch), which costs a fraction of
  // a std::nth_element, whose comparisons mispredict about half the time on scores like these.
  void shrink() {
    if (size_ <= k_) return;
    // Keys in the floats' order; every entry is above the bar, so none is NaN.
    std::uint32_t lo = order_key(bar_), hi = order_key(max_score());
    // Invariant: at least k entries are >= value(lo); fewer than k are >= value(hi + 1).
    while (lo < hi) {
      const std::uint32_t mid = lo + (hi - lo + 1) / 2;
      if (count_at_least(key_value(mid)) >= k_) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const float bar = key_value(lo);
    std::size_t ties = k_;
    for (std::size_t i = 0; i < size_; ++i) ties -= scores_[i] > bar;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {  // stable: the buffer stays in id order
      const float v = scores_[i];
      const bool tie = (v == bar) & (ties > 0);
      ties -= tie;
      scores_[kept] = v;
      ids_[kept] = ids_[i];
      // `|`, not `||`: no branch, whose outcome (kept or not) is a coin toss here.
      kept += static_cast<std::size_t>(v > bar) | static_cast<std::size_t>(tie);
    }
    size_ = kept;
    bar_ = bar;
  }

  // A key that orders floats as integers (-0 just below +0).
  static std::uint32_t order_key(float f) {
    const auto b = std::bit_cast<std::uint32_t>(f);
    return b & 0x80000000u ? ~b : b | 0x80000000u;
  }
  static float key_value(std::uint32_t key) {
    return std::bit_cast<float>(key & 0x80000000u ? key & 0x7fffffffu : ~key);
  }

  // Sixteen running maxima, which the compiler keeps in vector registers; one running maximum
  // would be a chain of dependent scalar operations.
  float max_score() const {
    float m[kBlock];
    std::fill(m, m + kBlock, scores_[0]);
    std::size_t i = 0;
    for (; i + kBlock <= size_; i += kBlock) {
      for (std::int64_t t = 0; t < kBlock; ++t) m[t] = std::max(m[t], scores_[i + t]);
    }
    for (; i < size_; ++i) m[0] = std::max(m[0], scores_[i]);
    return *std::max_element(m, m + kBlock);
  }

  std::size_t count_at_least(float t) const {
    std::size_t c = 0;
    for (std::size_t i = 0; i < size_; ++i) c += scores_[i] >= t;
    return c;
  }

  std::size_t k_, cap_;
  float floor_, bar_;
  std::size_t size_ = 0;
  std::vector<float> scores_;
  std::vector<std::int32_t> ids_;
};

}  // namespace semrec
