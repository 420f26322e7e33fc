#include "semrec/text/dense.hpp"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "semrec/text/gelu.hpp"
#include "semrec/text/vec8.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
// The baseline twin of a function that also has an AVX2 version (GCC picks one at load time).
#define SEMREC_BASELINE_VERSION __attribute__((target("default")))
#else
#define SEMREC_BASELINE_VERSION
#endif

namespace semrec::text {

namespace {

// The mkldnn ops torch.compile uses for frozen CPU linears; reached through the dispatcher
// because ATen ships no C++ declarations for them.
at::Tensor reorder_weight(const at::Tensor& w) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mkldnn::_reorder_linear_weight", "")
                       .typed<at::Tensor(const at::Tensor&, std::optional<std::int64_t>)>();
  return op.call(w, std::nullopt);
}

at::Tensor linear_unary(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                        std::string_view attr, std::optional<std::string_view> algorithm) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            std::string_view, c10::List<std::optional<at::Scalar>>,
                            std::optional<std::string_view>)>();
  return op.call(x, w, b, attr, c10::List<std::optional<at::Scalar>>(), algorithm);
}

at::Tensor linear_add(const at::Tensor& x, const at::Tensor& other, const at::Tensor& w,
                      const at::Tensor& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mkldnn::_linear_pointwise", "binary")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const std::optional<at::Tensor>&, std::string_view)>();
  return op.call(x, other, w, b, "add");
}

// Per-row scales of a symmetric quantisation of w to [-levels, levels]: for each row the
// clipping of its largest magnitude (none, or down to 70%) with the least squared error, as a
// few outliers would otherwise waste most of the levels on the rest of the row.
at::Tensor weight_scales(const at::Tensor& w, double levels) {
  const at::Tensor amax = w.abs().amax(1, /*keepdim=*/true).clamp_min(1e-12);
  at::Tensor best_scale, best_error;
  for (const double clip : {1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7}) {
    const at::Tensor scale = amax * (clip / levels);
    const at::Tensor error =
        ((w / scale).round_().clamp_(-levels, levels).mul_(scale) - w).square_().sum(1, true);
    if (!best_scale.defined()) {
      best_scale = scale, best_error = error;
    } else {
      const at::Tensor better = error < best_error;
      best_scale = at::where(better, scale, best_scale);
      best_error = at::where(better, error, best_error);
    }
  }
  return best_scale.view({-1});
}

// The text library is compiled once, for baseline x86-64 (SSE2); these per-row loops, which
// stream every int8 layer's activations, also get an AVX2+FMA clone, picked at load time on
// CPUs that have it (every CPU FBGEMM runs int8 on).
#define SEMREC_AVX2_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))

// Rows per block of the int8 layers: a block's uint8 activations and int32 sums (64 x 1536 x
// 5 bytes, under 0.5 MB) stay in cache from quantising to dequantising. (128-row blocks, 1 MB,
// were 5% slower on AVX2 encodes of item texts, session 27.)
constexpr std::int64_t kInt8BlockRows = 64;

// A row's quantisation range: lo = its minimum, step = (max - lo) / levels; returns 1 / step.
[[gnu::always_inline]] inline float row_range(const float* xr, std::int64_t in, float levels,
                                              float* lo, float* step) {
  float mn, mx;
  min_max(xr, in, mn, mx);
  const float width = std::max(mx - mn, 1e-30f);
  *lo = mn;
  *step = width / levels;
  return levels / width;
}

// int8 activations, step 1: the first `in` values of a row mapped affinely onto 0..levels,
// a = round((x - lo) / step), step = (max - lo) / levels; lo and step are returned. Two
// versions (picked at load time): AVX2 + FMA, the one every CPU that runs FBGEMM's int8 takes,
// and the baseline one.
SEMREC_BASELINE_VERSION void quantize_row(const float* xr, std::int64_t in, float levels,
                                          std::uint8_t* ar, float* lo, float* step) {
  const float inverse = row_range(xr, in, levels, lo, step), mn = *lo;
  // Non-negative, so adding 0.5 and truncating rounds to nearest; the clamp guards the top.
#pragma omp simd
  for (std::int64_t j = 0; j < in; ++j) {
    ar[j] = static_cast<std::uint8_t>(std::min((xr[j] - mn) * inverse + 0.5f, levels));
  }
}

#if defined(__x86_64__)
// The same codes with AVX2 intrinsics, packed 32 to a store (GCC's vectorised loop went 16 at
// a time through 128-bit halves). Same arithmetic as GCC's AVX2 build of the loop above, FMA
// included.
__attribute__((target("arch=x86-64-v3"))) void quantize_row(const float* xr, std::int64_t in,
                                                            float levels, std::uint8_t* ar,
                                                            float* lo, float* step) {
  const float inverse = row_range(xr, in, levels, lo, step), mn = *lo;
  const __m256 shift = _mm256_set1_ps(mn), scale = _mm256_set1_ps(inverse),
               half = _mm256_set1_ps(0.5f), top = _mm256_set1_ps(levels);
  // packus works within 128-bit lanes: the bytes come out as 4-byte groups a0 b0 c0 d0 | a1 b1
  // c1 d1 (a0 = a's codes 0-3, a1 = 4-7); the permute puts them back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  std::int64_t j = 0;
  for (; j + 32 <= in; j += 32) {
    __m256i c[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 x = _mm256_loadu_ps(xr + j + 8 * k);
      const __m256 v = _mm256_fmadd_ps(_mm256_sub_ps(x, shift), scale, half);
      c[k] = _mm256_cvttps_epi32(_mm256_min_ps(v, top));
    }
    const __m256i ab = _mm256_packus_epi32(c[0], c[1]), cd = _mm256_packus_epi32(c[2], c[3]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ar + j),
                        _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order));
  }
  for (; j < in; ++j) {
    const float v =
        _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(xr[j] - mn), _mm_set_ss(inverse), _mm_set_ss(0.5f)));
    ar[j] = static_cast<std::uint8_t>(std::min(v, levels));
  }
}
#endif

// int8 activations, step 2, for one row: from the int32 sums c = a Wq^T to
// y = step * c * scale + lo * rowsum(W) + bias (+ the float32 tail's x_t W_t^T) (+ residual),
// then GELU(y) if `gelu`.
SEMREC_AVX2_CLONE void dequantize_row(const std::int32_t* cr, float* yr, std::int64_t out,
                                      float step, float lo, const float* weight_scales,
                                      const float* weight_sums, const float* bias,
                                      const float* tail_x, std::int64_t tail_count,
                                      const float* tail_weight, const float* rr, bool gelu) {
  // One pass, each output's tail products and residual added while it is in a register, in
  // the order a pass per tail channel would add them (16 passes over the row cost the FFN
  // output layer more than its dequantisation). Vec8 by hand: GCC left this loop scalar.
  typedef std::int32_t UnalignedInt32x8 __attribute__((vector_size(32), aligned(4), may_alias));
  const Vec8 row_step = step - Vec8{}, row_lo = lo - Vec8{};
  std::int64_t j = 0;
  for (; j + 8 <= out; j += 8) {
    const Vec8 c =
        __builtin_convertvector(*reinterpret_cast<const UnalignedInt32x8*>(cr + j), Vec8);
    Vec8 y = c * SEMREC_LOAD8(weight_scales + j) * row_step +
             row_lo * SEMREC_LOAD8(weight_sums + j) + SEMREC_LOAD8(bias + j);
    for (std::int64_t t = 0; t < tail_count; ++t) {
      y += tail_x[t] * SEMREC_LOAD8(tail_weight + t * out + j);
    }
    if (rr != nullptr) y += SEMREC_LOAD8(rr + j);
    if (gelu) gelu_erf(y);
    SEMREC_STORE8(yr + j, y);
  }
  if (j == out) return;
  // The last few, through a Vec8 too (the same GELU).
  Vec8 y{};
  for (std::int64_t k = j; k < out; ++k) {
    float v = static_cast<float>(cr[k]) * weight_scales[k] * step + lo * weight_sums[k] + bias[k];
    for (std::int64_t t = 0; t < tail_count; ++t) v += tail_x[t] * tail_weight[t * out + k];
    if (rr != nullptr) v += rr[k];
    y[k - j] = v;
  }
  if (gelu) gelu_erf(y);
  for (std::int64_t k = j; k < out; ++k) yr[k] = y[k - j];
}

}  // namespace

bool onednn_usable(at::ScalarType dtype) {
  if (!at::hasMKLDNN() || !at::globalContext().userEnabledMkldnn()) return false;
  if (dtype == at::kFloat) return true;
  if (dtype != at::kBFloat16) return false;
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mkldnn::_is_mkldnn_bf16_supported", "")
                       .typed<bool()>();
  return op.call();
}

Dense::Dense(at::Tensor weight, at::Tensor bias, DenseKernel kernel, Int8Range range,
             std::int64_t fp32_tail)
    : weight_(weight.contiguous()), bias_(bias.contiguous()) {
  if (kernel == DenseKernel::onednn) packed_ = reorder_weight(weight_);
  if (kernel == DenseKernel::int8) {
    if (!int8_gemm_available()) throw std::invalid_argument("int8 needs FBGEMM (x86 CPUs)");
    // Symmetric per-channel weights: row r is scaled so its largest magnitude maps to 127 (or
    // 64, see Int8Range); activations take 255 levels (or 127).
    const double levels = range == Int8Range::seven_bit_weights ? 64.0 : 127.0;
    activation_levels_ = range == Int8Range::seven_bit_activations ? 127.0f : 255.0f;
    const std::int64_t in = weight_.size(1);
    if (fp32_tail < 0 || fp32_tail >= in) throw std::invalid_argument("fp32_tail out of range");
    tail_ = fp32_tail;
    tail_weight_ = weight_.slice(1, in - tail_).to(at::kFloat).t().contiguous();
    const at::Tensor w = weight_.slice(1, 0, in - tail_).to(at::kFloat);
    weight_scales_ = weight_scales(w, levels).contiguous();
    // Clamped to +-levels: a clipped scale maps the row's extremes beyond them, and past 64
    // the no-VNNI multiply-add would saturate.
    const at::Tensor q = (w / weight_scales_.unsqueeze(1))
                             .round_()
                             .clamp_(-levels, levels)
                             .to(at::kChar)
                             .contiguous();
    int8_ = Int8Gemm(q.data_ptr<std::int8_t>(), q.size(0), q.size(1));
    weight_sums_ = (q.to(at::kFloat) * weight_scales_.unsqueeze(1)).sum(1).contiguous();
    weight_ = at::Tensor();  // the packed copy is all that is needed
  }
}

// Where an int8 layer's input rows come from: float32 rows (n x in), quantised block by block,
// or rows an earlier layer quantised for this one (Dense::quantized_for).
struct Dense::Int8Input {
  const float* rows = nullptr;
  const QuantizedRows* quantized = nullptr;
};

// Where its results go: float32 rows (n x out, the residual added, then act), or, with `next`,
// quantised for that layer into `quantized` (the float32 rows then live only block by block).
struct Dense::Int8Output {
  Epilogue act = Epilogue::none;
  float* rows = nullptr;
  const float* residual = nullptr;
  const Dense* next = nullptr;
  QuantizedRows* quantized = nullptr;
};

namespace {

// The rows (n x out float32) of a result: `recycled`'s memory when large enough, else a new
// tensor, which `recycled` then holds (see Dense::operator()).
at::Tensor result_rows(std::int64_t n, std::int64_t out, at::Tensor* recycled) {
  if (recycled != nullptr && recycled->defined() && recycled->is_contiguous() &&
      recycled->scalar_type() == at::kFloat && recycled->numel() >= n * out) {
    return recycled->view({-1}).slice(0, 0, n * out).view({n, out});
  }
  at::Tensor y = at::empty({n, out}, at::kFloat);
  if (recycled != nullptr) *recycled = y;
  return y;
}

}  // namespace

// Per-row activation scales: each row is mapped affinely onto 0..levels (x ~ lo + step * a),
// so x W^T = step * (a Wq^T) * scale + lo * rowsum(W). Every step is per row and the int32
// sums are exact, so a row's result does not depend on the other rows or the blocking.
void Dense::int8_blocks(std::int64_t n, const Int8Input& input, const Int8Output& output) const {
  const std::int64_t in_int8 = int8_.in(), in = in_int8 + tail_, out = int8_.out();
  const float *scales = weight_scales_.data_ptr<float>(), *sums = weight_sums_.data_ptr<float>();
  const float *bias = bias_.data_ptr<float>(), *tail_w = tail_weight_.data_ptr<float>();
  const QuantizedRows* from = input.quantized;  // rows quantised for this layer, or null
  QuantizedRows* into = output.quantized;       // rows quantised for output.next, or null
  // Blocks of at most kInt8BlockRows, as many per thread (800 rows on 2 threads: 14 blocks of
  // at most 58 rows, not 7 + 6 blocks of 64).
  const std::int64_t threads = std::max(1, at::get_num_threads());
  std::int64_t blocks = (n + kInt8BlockRows - 1) / kInt8BlockRows;
  blocks = std::min(n, (blocks + threads - 1) / threads * threads);
  const std::int64_t block_rows = (n + blocks - 1) / std::max<std::int64_t>(blocks, 1);
  blocks = (n + block_rows - 1) / std::max<std::int64_t>(block_rows, 1);
  at::parallel_for(0, blocks, 1, [&](std::int64_t first, std::int64_t last) {
    std::vector<std::uint8_t> a(input.rows != nullptr ? block_rows * in_int8 : 0);
    std::vector<std::int32_t> c(block_rows * out);
    std::array<float, kInt8BlockRows> lo{}, step{};
    for (std::int64_t block = first; block < last; ++block) {
      const std::int64_t r0 = block * block_rows, m = std::min(block_rows, n - r0);
      const std::uint8_t* codes = a.data();
      const float *row_lo = lo.data(), *row_step = step.data(), *tail_x = nullptr;
      std::int64_t tail_stride = in;
      if (input.rows != nullptr) {
        for (std::int64_t r = 0; r < m; ++r) {
          quantize_row(input.rows + (r0 + r) * in, in_int8, activation_levels_,
                       a.data() + r * in_int8, &lo[r], &step[r]);
        }
        tail_x = input.rows + r0 * in + in_int8;
      } else {
        codes = from->codes.data_ptr<std::uint8_t>() + r0 * in_int8;
        row_lo = from->lo.data_ptr<float>() + r0;
        row_step = from->step.data_ptr<float>() + r0;
        if (tail_ > 0) tail_x = from->tail.data_ptr<float>() + r0 * tail_;
        tail_stride = tail_;
      }
      int8_.multiply(codes, m, c.data());
      // Quantised for the next layer, the block's float results overwrite its int32 sums, which
      // stay in cache: element j is read before it is written, and no other.
      float* y =
          output.rows != nullptr ? output.rows + r0 * out : reinterpret_cast<float*>(c.data());
      for (std::int64_t r = 0; r < m; ++r) {
        dequantize_row(c.data() + r * out, y + r * out, out, row_step[r], row_lo[r], scales, sums,
                       bias, tail_ > 0 ? tail_x + r * tail_stride : nullptr, tail_, tail_w,
                       output.residual != nullptr ? output.residual + (r0 + r) * out : nullptr,
                       output.act == Epilogue::gelu);
      }
      if (output.next != nullptr) {
        const Dense& next = *output.next;
        const std::int64_t next_int8 = next.int8_.in();
        std::uint8_t* codes_out = into->codes.data_ptr<std::uint8_t>();
        float *lo_out = into->lo.data_ptr<float>(), *step_out = into->step.data_ptr<float>();
        float* tail_out = into->tail.data_ptr<float>();
        for (std::int64_t r = 0; r < m; ++r) {
          const std::int64_t g = r0 + r;
          const float* yr = y + r * out;
          quantize_row(yr, next_int8, next.activation_levels_, codes_out + g * next_int8,
                       lo_out + g, step_out + g);
          std::copy(yr + next_int8, yr + out, tail_out + g * next.tail_);
        }
      }
    }
  });
}

at::Tensor Dense::int8_forward(const at::Tensor& x, Epilogue act, const at::Tensor* residual,
                               at::Tensor* recycled) const {
  const std::int64_t in = x.size(-1), out = int8_.out();
  std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
  const at::Tensor rows = x.reshape({-1, in}).contiguous();
  const std::int64_t n = rows.size(0);
  at::Tensor y = result_rows(n, out, recycled);
  shape.back() = out;
  if (n == 0) return y.view(shape);
  // The residual joins in the dequantisation only when no GELU follows (BERT never asks for
  // both).
  const bool add_residual = residual != nullptr && act == Epilogue::none;
  const at::Tensor res = add_residual ? residual->reshape({n, out}).contiguous() : at::Tensor();
  int8_blocks(n, {rows.data_ptr<float>(), nullptr},
              {act, y.data_ptr<float>(), add_residual ? res.data_ptr<float>() : nullptr});
  y = y.view(shape);
  if (residual != nullptr && !add_residual) y.add_(*residual);
  return y;
}

void Dense::quantized_for(const Dense& next, const at::Tensor& x, Epilogue act,
                          QuantizedRows& into) const {
  if (!int8_ || !next.int8_ || next.int8_.in() + next.tail_ != int8_.out()) {
    throw std::invalid_argument(
        "quantized_for: both layers must be int8, this one's outputs "
        "the next one's inputs");
  }
  const std::int64_t in = x.size(-1);
  const at::Tensor rows = x.reshape({-1, in}).contiguous();
  const std::int64_t n = rows.size(0), channels = next.int8_.in();
  if (!into.codes.defined() || into.codes.size(0) < n || into.codes.size(1) != channels ||
      into.tail.size(1) != next.tail_) {
    into.codes = at::empty({n, channels}, at::kByte);
    into.lo = at::empty({n}, at::kFloat);
    into.step = at::empty({n}, at::kFloat);
    into.tail = at::empty({n, next.tail_}, at::kFloat);
  }
  into.rows = n;
  if (n > 0)
    int8_blocks(n, {rows.data_ptr<float>(), nullptr}, {act, nullptr, nullptr, &next, &into});
}

at::Tensor Dense::operator()(const QuantizedRows& x, const at::Tensor* residual,
                             at::Tensor* recycled) const {
  if (!int8_ || x.codes.size(1) != int8_.in() || x.tail.size(1) != tail_) {
    throw std::invalid_argument("quantized rows: not quantised for this layer");
  }
  const std::int64_t n = x.rows, out = int8_.out();
  at::Tensor y = result_rows(n, out, recycled);
  if (n == 0) return y;
  const at::Tensor res =
      residual != nullptr ? residual->reshape({n, out}).contiguous() : at::Tensor();
  int8_blocks(
      n, {nullptr, &x},
      {Epilogue::none, y.data_ptr<float>(), residual != nullptr ? res.data_ptr<float>() : nullptr});
  return y;
}

at::Tensor Dense::operator()(const at::Tensor& x, Epilogue act, const at::Tensor* residual,
                             at::Tensor* recycled) const {
  if (int8_) return int8_forward(x, act, residual, recycled);
  if (packed_.defined()) {
    if (residual != nullptr && act == Epilogue::none) {
      return linear_add(x, *residual, packed_, bias_);
    }
    if (residual != nullptr) {  // both epilogues at once: not fused (BERT never asks for it)
      return linear_unary(x, packed_, bias_, "gelu", "none") + *residual;
    }
    // "none" selects oneDNN's exact erf GELU, the one BERT uses.
    return act == Epilogue::gelu ? linear_unary(x, packed_, bias_, "gelu", "none")
                                 : linear_unary(x, packed_, bias_, "none", std::nullopt);
  }
  at::Tensor y = at::linear(x, weight_, bias_);
  if (act == Epilogue::gelu) y = at::gelu(y);
  if (residual != nullptr) y = y + *residual;
  return y;
}

}  // namespace semrec::text
