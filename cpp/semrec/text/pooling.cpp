#include "semrec/text/pooling.hpp"

#include "semrec/text/pooling_ops.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <stdexcept>
#include <string>

namespace semrec::text {

at::Tensor masked_mean(const at::Tensor& hidden, const at::Tensor& lengths) {
  const std::int64_t seq_len = hidden.size(1);
  const at::Tensor mask =
      (at::arange(seq_len, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1)).to(at::kFloat);
  at::Tensor sums = at::bmm(mask.unsqueeze(1), hidden).squeeze(1);  // (n, dim)
  return sums.div_(lengths.clamp_min(1).to(at::kFloat).unsqueeze(1));
}

at::Tensor l2_normalize(const at::Tensor& rows) {
  return rows / rows.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

void mean_pool(const float* hidden, std::int64_t n, std::int64_t seq_len, std::int64_t dim,
               const std::int64_t* lengths, bool normalize, float* out) {
  if (n < 0 || seq_len < 0 || dim < 0) throw std::invalid_argument("negative tensor size");
  for (std::int64_t i = 0; i < n; ++i) {
    if (lengths[i] < 0 || lengths[i] > seq_len) {
      throw std::out_of_range("lengths[" + std::to_string(i) + "] = " + std::to_string(lengths[i]) +
                              " is outside [0, " + std::to_string(seq_len) + "]");
    }
  }
  if (n == 0 || dim == 0) return;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  // from_blob wraps the caller's buffers without copying; nothing here outlives the call.
  const at::Tensor h = at::from_blob(const_cast<float*>(hidden), {n, seq_len, dim}, f32);
  const at::Tensor len = at::from_blob(const_cast<std::int64_t*>(lengths), {n}, i64);
  at::Tensor result = at::from_blob(out, {n, dim}, f32);

  at::Tensor pooled = masked_mean(h, len);
  if (normalize) pooled = l2_normalize(pooled);
  result.copy_(pooled);
}

int torch_num_threads() { return at::get_num_threads(); }

void set_torch_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be >= 1");
  at::set_num_threads(n);
}

}  // namespace semrec::text
