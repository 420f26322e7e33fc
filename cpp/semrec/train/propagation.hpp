// LightGCN-style propagation over the user-item graph, on plain arrays (no torch types here).
//
// The graph has one node per user and per item and an edge for every stored interaction
// (binary: the interaction's weight is not used). Its symmetric-normalised adjacency is
//   Â = D^-1/2 A D^-1/2,  Â[u, i] = Â[i, u] = 1 / sqrt(deg(u) deg(i)),
// and propagation with L layers maps node vectors x (rows: users first, then items) to the mean
// of the layer outputs, (1 / (L + 1)) Σ_{l=0..L} Â^l x. Â is symmetric, so that map is its own
// transpose: the same call back-propagates a gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "semrec/train/sparse.hpp"

namespace semrec::train {

class BipartiteGraph {
 public:
  // indptr (users + 1) / indices (nnz, item ids in [0, items)): users x items CSR without
  // duplicate entries (the caller canonicalises). Throws std::invalid_argument when malformed.
  BipartiteGraph(const std::int64_t* indptr, const std::int32_t* indices, std::int64_t users,
                 std::int64_t items);

  std::int64_t users() const { return users_; }
  std::int64_t items() const { return items_; }
  std::int64_t nodes() const { return users_ + items_; }
  std::int64_t degree(std::int64_t node) const { return adjacency_.row_size(node); }

  // out = Â x; x and out are nodes() x dim, row-major, and must not overlap. Parallel over
  // output rows (LibTorch's intra-op threads); each row sums its neighbours in index order,
  // so the result is identical for any thread count.
  void multiply(const float* x, std::int64_t dim, float* out) const {
    adjacency_.multiply(x, dim, out);
  }

  // out = (1 / (L + 1)) Σ_{l=0..L} Â^l x. When `layer_outputs` is given it receives every
  // Â^l x, l = 0..L, as (L + 1) consecutive nodes() x dim blocks.
  void propagate(const float* x, std::int64_t dim, std::int64_t layers, float* out,
                 float* layer_outputs = nullptr) const;

 private:
  std::int64_t users_, items_;
  // Rows of Â: users' rows (over item nodes) then items' rows (over user nodes), one CSR.
  SparseRows adjacency_;
};

}  // namespace semrec::train
