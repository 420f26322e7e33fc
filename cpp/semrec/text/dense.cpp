#include "semrec/text/dense.hpp"

#include <ATen/core/dispatch/Dispatcher.h>

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

Dense::Dense(at::Tensor weight, at::Tensor bias, bool use_onednn)
    : weight_(weight.contiguous()), bias_(bias.contiguous()) {
  if (use_onednn) packed_ = reorder_weight(weight_);
}

at::Tensor Dense::operator()(const at::Tensor& x, Epilogue act, const at::Tensor* residual) const {
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
