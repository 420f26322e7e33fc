// The bounded top-k selector every ranking kernel uses (similarity search, neighbourhood CF).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace semrec {

struct ScoredId {
  float score;
  std::int32_t id;
};

// The ranking order of every result list: higher score first, equal scores by the lower id.
inline bool ranks_before(const ScoredId& a, const ScoredId& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// The k best entries scoring strictly above a floor (-inf: any number; NaN never enters).
// Entries collect in a buffer of up to 2k; when it fills, a selection keeps the k best and the
// worst of them becomes the bar every later entry must beat. That costs O(1) per entry on
// average, against O(log k) for a heap, which matters for large k. The kept set is unique
// (ranks_before is a strict total order over distinct ids), so it does not depend on the order
// entries arrive in.
class TopKSelector {
 public:
  explicit TopKSelector(int k, float floor = -std::numeric_limits<float>::infinity())
      : k_(static_cast<std::size_t>(k)), floor_(floor) {}

  // The score an entry must exceed to enter; one that equals it enters only with a lower id
  // than the bar's (never, when ids arrive in increasing order). A cheap pre-filter.
  float threshold() const { return full_ ? bar_.score : floor_; }
  bool admits(float score, std::int32_t id) const {
    return full_ ? ranks_before({score, id}, bar_) : score > floor_;
  }

  // Adds an entry the caller found admissible (or any entry: the selection sorts it out).
  void push(float score, std::int32_t id) {
    if (buffer_.capacity() == 0) buffer_.reserve(std::min<std::size_t>(2 * k_, 1 << 16));
    buffer_.push_back({score, id});
    if (buffer_.size() >= 2 * k_) shrink();
  }

  // The kept entries, best first. The caller may read and extend them, then calls reset().
  std::vector<ScoredId>& finish() {
    shrink();
    std::sort(buffer_.begin(), buffer_.end(), ranks_before);
    return buffer_;
  }

  void reset() {
    buffer_.clear();
    full_ = false;
  }

  // Writes the kept entries best first, padded to k with (-1, -inf), and resets.
  void write(std::int32_t* ids, float* scores) {
    finish();
    std::size_t i = 0;
    for (; i < buffer_.size(); ++i) {
      ids[i] = buffer_[i].id;
      scores[i] = buffer_[i].score;
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
                     buffer_.end(), ranks_before);
    buffer_.resize(k_);
    bar_ = buffer_[k_ - 1];
    full_ = true;
  }

  std::size_t k_;
  float floor_;
  bool full_ = false;
  ScoredId bar_{0.0f, 0};
  std::vector<ScoredId> buffer_;
};

}  // namespace semrec
