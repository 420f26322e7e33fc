#include "semrec/text/dense.hpp"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/record_function.h>

// torch's x86 wheels ship FBGEMM; its CPU-dispatch header is self-contained.
#if __has_include(<fbgemm/Utils.h>)
#include <fbgemm/Utils.h>
#define SEMREC_HAVE_FBGEMM 1
#endif

#include <algorithm>
#include <mutex>
#include <optional>
#include <string_view>

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

// Quantised tensors are deprecated in torch (a warning on first use); here a weight is one only
// until FBGEMM has packed it.
c10::WarningHandler& silent_warnings() {
  struct Silent : c10::WarningHandler {
    void process(const c10::Warning&) override {}
  };
  static Silent silent;
  return silent;
}

// Packs an int8 weight (per-channel qint8) and float bias for FBGEMM's dynamic linear. The op
// follows the global quantisation engine, so FBGEMM is selected for the call and restored.
c10::intrusive_ptr<LinearPackedParamsBase> prepack_int8(const at::Tensor& w,
                                                        const std::optional<at::Tensor>& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("quantized::linear_prepack", "")
                       .typed<c10::intrusive_ptr<LinearPackedParamsBase>(
                           at::Tensor, std::optional<at::Tensor>)>();
  static std::mutex engine_mutex;
  std::lock_guard<std::mutex> lock(engine_mutex);
  auto& ctx = at::globalContext();
  const at::QEngine previous = ctx.qEngine();
  ctx.setQEngine(at::QEngine::FBGEMM);
  try {
    auto packed = op.call(w, b);
    ctx.setQEngine(previous);
    return packed;
  } catch (...) {
    ctx.setQEngine(previous);
    throw;
  }
}

// The text library is compiled once, for baseline x86-64 (SSE2); these per-row loops, which
// stream every int8 layer's activations, also get an AVX2+FMA clone, picked at load time on
// CPUs that have it (every CPU FBGEMM runs int8 on).
#define SEMREC_AVX2_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))

// int8 activations, step 1: the first `in` values of a row mapped affinely onto [0, 1],
// u = (x - lo) / range, in two passes (extremes, then u) instead of ATen's three.
SEMREC_AVX2_CLONE void normalize_row(const float* xr, std::int64_t in, float* ur, float* lo,
                                     float* range) {
  float mn = xr[0], mx = xr[0];
#pragma omp simd reduction(min : mn) reduction(max : mx)
  for (std::int64_t j = 0; j < in; ++j) {
    mn = std::min(mn, xr[j]);
    mx = std::max(mx, xr[j]);
  }
  const float width = std::max(mx - mn, 1e-30f);
  *lo = mn;
  *range = width;
  // A division, not a multiplication by 1 / width: each row's largest u must be exactly 1, as
  // FBGEMM's quantisation scale follows the whole batch's largest u (batch independence).
#pragma omp simd
  for (std::int64_t j = 0; j < in; ++j) ur[j] = (xr[j] - mn) / width;
}

// Rows (rows x ld) of x, their first `in` columns normalised into u (rows x in).
void normalize_rows(const float* x, std::int64_t rows, std::int64_t in, std::int64_t ld, float* u,
                    float* lo, float* range) {
  at::parallel_for(0, rows, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      normalize_row(x + r * ld, in, u + r * in, lo + r, range + r);
    }
  });
}

// The float32 part of a layer: its last `tail` input channels (the activation outliers).
struct Tail {
  const float* x = nullptr;  // the layer's input, row r's outliers at x + r * ld
  std::int64_t ld = 0, count = 0;
  const float* weight = nullptr;  // (count x out): the weight's last columns, transposed
};

// int8 activations, step 2, for one row of the GEMM's output y = u W^T:
// y = range * y + lo * rowsum(W) + bias (+ the float32 tail's x_t W_t^T) (+ residual).
SEMREC_AVX2_CLONE void dequantize_row(float* yr, std::int64_t out, float scale, float offset,
                                      const float* weight_sums, const float* bias,
                                      const float* tail_x, std::int64_t tail_count,
                                      const float* tail_weight, const float* rr) {
#pragma omp simd
  for (std::int64_t j = 0; j < out; ++j) yr[j] = yr[j] * scale + offset * weight_sums[j] + bias[j];
  for (std::int64_t t = 0; t < tail_count; ++t) {
    const float xt = tail_x[t];
    const float* wt = tail_weight + t * out;
#pragma omp simd
    for (std::int64_t j = 0; j < out; ++j) yr[j] += xt * wt[j];
  }
  if (rr != nullptr) {
#pragma omp simd
    for (std::int64_t j = 0; j < out; ++j) yr[j] += rr[j];
  }
}

void dequantize_rows(float* y, std::int64_t rows, std::int64_t out, const float* lo,
                     const float* range, const float* weight_sums, const float* bias,
                     const Tail& tail, const float* residual) {
  at::parallel_for(0, rows, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      dequantize_row(y + r * out, out, range[r], lo[r], weight_sums, bias,
                     tail.count > 0 ? tail.x + r * tail.ld : nullptr, tail.count, tail.weight,
                     residual != nullptr ? residual + r * out : nullptr);
    }
  });
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

std::string int8_kernel_isa() {
#if defined(SEMREC_HAVE_FBGEMM)
  switch (fbgemm::fbgemmInstructionSet()) {
    case fbgemm::inst_set_t::avx2:
      return "avx2";
    case fbgemm::inst_set_t::avx512:
      return "avx512";
    case fbgemm::inst_set_t::avx512_ymm:
      return "avx512_ymm";
    case fbgemm::inst_set_t::avx512_vnni:
      return "avx512_vnni";
    case fbgemm::inst_set_t::avx512_vnni_ymm:
      return "avx512_vnni_ymm";
    default:
      return "none";
  }
#else
  return "none";
#endif
}

Dense::Dense(at::Tensor weight, at::Tensor bias, DenseKernel kernel, Int8Range range,
             std::int64_t fp32_tail)
    : weight_(weight.contiguous()), bias_(bias.contiguous()) {
  if (kernel == DenseKernel::onednn) packed_ = reorder_weight(weight_);
  if (kernel == DenseKernel::int8) {
    if (int8_kernel_isa() == "none") throw std::invalid_argument("int8 needs FBGEMM (x86 CPUs)");
    // Symmetric per-channel weights: row r is scaled so its largest magnitude maps to 127 (or
    // 64, see Int8Range); activations take 255 levels (or 127).
    c10::WarningUtils::WarningHandlerGuard quiet(&silent_warnings());
    const double levels = range == Int8Range::seven_bit_weights ? 64.0 : 127.0;
    seven_bit_activations_ = range == Int8Range::seven_bit_activations;
    const std::int64_t in = weight_.size(1);
    if (fp32_tail < 0 || fp32_tail >= in) throw std::invalid_argument("fp32_tail out of range");
    tail_ = fp32_tail;
    tail_weight_ = weight_.slice(1, in - tail_).to(at::kFloat).t().contiguous();
    const at::Tensor w = weight_.slice(1, 0, in - tail_).to(at::kFloat);
    const at::Tensor scales = weight_scales(w, levels).to(at::kDouble);
    const at::Tensor zeros = at::zeros({w.size(0)}, at::kLong);
    // Rounded and clamped here, not by quantize_per_channel (which clamps to [-128, 127]): a
    // clipped scale maps the row's extremes beyond +-levels, and past 64 the no-VNNI
    // multiply-add would saturate.
    const at::Tensor q_values =
        (w / scales.to(at::kFloat).unsqueeze(1)).round_().clamp_(-levels, levels).to(at::kChar);
    const at::Tensor q = at::_make_per_channel_quantized_tensor(q_values, scales, zeros, 0);
    int8_ = prepack_int8(q, std::nullopt);
    weight_sums_ = q.dequantize().sum(1);
    weight_ = at::Tensor();  // the packed copy is all that is needed
  }
}

at::Tensor Dense::operator()(const at::Tensor& x, Epilogue act, const at::Tensor* residual) const {
  if (int8_) {
    // Per-row activation scales on FBGEMM's per-tensor kernel: each row is mapped affinely
    // onto [0, 1] (x = lo + range * u), so quantising u with one scale for the whole tensor
    // quantises every row over its own range; then x W^T = range * (u W^T) + lo * rowsum(W).
    const auto in = x.size(-1), in_int8 = in - tail_;
    std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
    const at::Tensor rows = x.reshape({-1, in}).contiguous();
    const std::int64_t n = rows.size(0);
    at::Tensor u = at::empty({n, in_int8}, rows.options());
    at::Tensor lo = at::empty({n}, rows.options()), range = at::empty({n}, rows.options());
    {
      RECORD_USER_SCOPE("semrec::int8_normalize");
      normalize_rows(rows.data_ptr<float>(), n, in_int8, in, u.data_ptr<float>(),
                     lo.data_ptr<float>(), range.data_ptr<float>());
    }
    at::Tensor y;
    {
      RECORD_USER_SCOPE("semrec::int8_gemm");  // FBGEMM: quantise u, then the int8 GEMM
      y = int8_->apply_dynamic(u, /*reduce_range=*/seven_bit_activations_).contiguous();
    }
    // The residual joins here only when no GELU follows (BERT never asks for both).
    const bool add_residual = residual != nullptr && act == Epilogue::none;
    {
      RECORD_USER_SCOPE("semrec::int8_dequantize");
      const at::Tensor res = add_residual ? residual->reshape({n, -1}).contiguous() : at::Tensor();
      Tail tail;
      if (tail_ > 0) {
        tail = {rows.data_ptr<float>() + in_int8, in, tail_, tail_weight_.data_ptr<float>()};
      }
      dequantize_rows(y.data_ptr<float>(), n, y.size(1), lo.data_ptr<float>(),
                      range.data_ptr<float>(), weight_sums_.data_ptr<float>(),
                      bias_.data_ptr<float>(), tail,
                      add_residual ? res.data_ptr<float>() : nullptr);
    }
    shape.back() = y.size(-1);
    y = y.view(shape);
    if (act == Epilogue::gelu) {
      RECORD_USER_SCOPE("semrec::gelu");
      at::gelu_(y);
    }
    if (residual != nullptr && !add_residual) y.add_(*residual);
    return y;
  }
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
