#include "semrec/train/propagation.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace semrec::train {

BipartiteGraph::BipartiteGraph(const std::int64_t* indptr, const std::int32_t* indices,
                               std::int64_t users, std::int64_t items)
    : users_(users), items_(items) {
  if (users < 0 || items < 0) throw std::invalid_argument("graph: negative size");
  if (users + items > std::int64_t{INT32_MAX}) {
    throw std::invalid_argument("graph: more than 2^31 - 1 users and items");
  }
  if (indptr[0] != 0) throw std::invalid_argument("graph: indptr must start at 0");
  const std::int64_t nnz = indptr[users];
  std::vector<std::int64_t> item_degree(items, 0);
  for (std::int64_t u = 0; u < users; ++u) {
    if (indptr[u + 1] < indptr[u]) throw std::invalid_argument("graph: indptr decreases");
    for (std::int64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
      const std::int32_t i = indices[k];
      if (i < 0 || i >= items) {
        throw std::invalid_argument("graph: item id " + std::to_string(i) + " out of range");
      }
      if (k > indptr[u] && indices[k - 1] >= i) {
        throw std::invalid_argument("graph: each row's items must be strictly increasing");
      }
      ++item_degree[i];
    }
  }
  const std::int64_t n = users + items;
  std::vector<std::int64_t> node_ptr(n + 1, 0);
  for (std::int64_t u = 0; u < users; ++u) node_ptr[u + 1] = indptr[u + 1] - indptr[u];
  for (std::int64_t i = 0; i < items; ++i) node_ptr[users + i + 1] = item_degree[i];
  for (std::int64_t r = 0; r < n; ++r) node_ptr[r + 1] += node_ptr[r];
  std::vector<std::int32_t> node_idx(2 * nnz);
  std::vector<float> node_val(2 * nnz);
  std::vector<std::int64_t> fill(node_ptr.begin() + users, node_ptr.end() - 1);
  for (std::int64_t u = 0; u < users; ++u) {
    const double du = static_cast<double>(indptr[u + 1] - indptr[u]);
    for (std::int64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
      const std::int32_t i = indices[k];
      const float w = static_cast<float>(1.0 / std::sqrt(du * static_cast<double>(item_degree[i])));
      const std::int64_t user_slot = node_ptr[u] + (k - indptr[u]);
      node_idx[user_slot] = static_cast<std::int32_t>(users + i);
      node_val[user_slot] = w;
      // Users are visited in increasing order, so each item's row is sorted by user id.
      const std::int64_t item_slot = fill[i]++;
      node_idx[item_slot] = static_cast<std::int32_t>(u);
      node_val[item_slot] = w;
    }
  }
  adjacency_ = SparseRows(std::move(node_ptr), std::move(node_idx), std::move(node_val), n);
}

void BipartiteGraph::propagate(const float* x, std::int64_t dim, std::int64_t layers, float* out,
                               float* layer_outputs) const {
  if (layers < 0) throw std::invalid_argument("layers must be >= 0");
  const std::int64_t size = nodes() * dim;
  std::vector<float> current(x, x + size), next(layers > 0 ? size : 0);
  std::vector<double> sum(current.begin(), current.end());
  if (layer_outputs) std::memcpy(layer_outputs, x, sizeof(float) * size);
  for (std::int64_t l = 1; l <= layers; ++l) {
    multiply(current.data(), dim, next.data());
    current.swap(next);
    if (layer_outputs) std::memcpy(layer_outputs + l * size, current.data(), sizeof(float) * size);
    for (std::int64_t k = 0; k < size; ++k) sum[k] += current[k];
  }
  const double scale = 1.0 / static_cast<double>(layers + 1);
  for (std::int64_t k = 0; k < size; ++k) out[k] = static_cast<float>(sum[k] * scale);
}

}  // namespace semrec::train
