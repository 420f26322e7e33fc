// Fine-tuning the top layers of a BERT-family sentence encoder on interactions, jointly with a
// TextCF-style network (LibTorch autograd: torch::optim::Adam). The interface uses plain types
// (pimpl), so binding code never includes torch headers.
//
// Model. Item i's input x_i = normalise(mean over its tokens of the encoder's last layer), where
// the bottom layers are frozen (run once, without gradients) and the top `tuned_layers` are
// trained. A user's input is the weighted mean of the x_i of the user's history (the
// interaction weights, row-normalised). Both go through one MLP, Linear(width, hidden) ->
// LeakyReLU -> Linear(hidden, factors), and are normalised: v_u, v_i; s(u, i) = v_u . v_i.
// Loss: the full softmax at temperature tau over the items with at least one interaction (the
// cold items are not pushed away), averaged over a batch of interactions. Adam, one learning
// rate for the encoder's layers and one for the MLP. By default every trained item is
// recomputed by the tuned layers at every step (their gradients reach each x_i through both
// sides). With items_per_step, a step runs the tuned layers on that many items only (a
// uniform sample) and takes every other x_i from a cache of its last computed value: a step's
// cost no longer grows with the catalogue, at the price of stale inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "semrec/parallel.hpp"
#include "semrec/train/textcf.hpp"  // NamedArray, TrainingPairs

namespace semrec::train {

struct EncoderTuningConfig {
  std::int64_t heads = 12;  // attention heads of the encoder
  double layer_norm_eps = 1e-12;
  std::int64_t tuned_layers = 2;  // the top ones; the rest stay frozen
  std::int64_t hidden = 768;      // the MLP
  std::int64_t factors = 64;
  double negative_slope = 0.01;
  double tau = 0.15;
  std::int64_t batch_size = 4096;
  double learning_rate = 1e-4;  // the tuned layers
  double mlp_learning_rate = 1e-3;
  std::uint64_t seed = 0;
  std::int64_t bucket = 64;  // texts per forward chunk (sorted by length, padded to the longest)
  // Backward recomputes each chunk's tuned layers instead of keeping every chunk's activations:
  // memory of one chunk for about 30% more compute (catalogues too large to hold them all).
  bool recompute = false;
  // The tuned layers' matrix products in bfloat16 (autocast; weights, Adam and the loss stay
  // float32): faster where the CPU has native bf16 (AVX-512 BF16, AMX), far slower where not.
  bool bf16 = false;
  // Items whose tuned layers run per step; 0 (or at least the trained items): all of them.
  std::int64_t items_per_step = 0;
};

// Token ids ([CLS] ... [SEP]) of each item's text: text t is ids[offsets[t] .. offsets[t + 1]).
struct TokenIds {
  const std::int64_t* offsets = nullptr;
  const std::int32_t* ids = nullptr;
  std::int64_t texts = 0;
};

class EncoderTuner {
 public:
  // encoder: every tensor of a `layers`-layer encoder, float32, named without a prefix
  // ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.bias", ...). mlp:
  // "l1.weight" (hidden x width), "l1.bias", "l2.weight" (factors x hidden), "l2.bias". tokens:
  // one text per item of pairs. Runs the frozen layers once (stop polled between chunks).
  // Copies what it needs; throws std::invalid_argument on inconsistent input.
  EncoderTuner(const EncoderTuningConfig& config, const std::vector<NamedArray>& encoder,
               std::int64_t layers, const std::vector<NamedArray>& mlp, TokenIds tokens,
               TrainingPairs pairs, const StopCheck& stop = {});
  ~EncoderTuner();
  EncoderTuner(const EncoderTuner&) = delete;
  EncoderTuner& operator=(const EncoderTuner&) = delete;

  // Adam step `step` of epoch `epoch` (batches of the interactions in the order of
  // epoch_order(seed, epoch)); returns the batch's loss. `stop` is polled between chunks of the
  // tuned layers' forward pass, and of their backward pass under recompute; an interrupted step
  // updates nothing.
  double step(std::int64_t epoch, std::int64_t step, const StopCheck& stop = {});
  std::int64_t steps_per_epoch() const;

  // The loss of one batch of (user, item) interactions and the gradient of every trained
  // weight (tuned layers, then the MLP), without updating anything (checks against a reference).
  // With `fresh` (fresh_n distinct trained items), only those run the tuned layers and the
  // other items' inputs come from the cache, as in a step with items_per_step.
  double batch_gradients(const std::int32_t* users, const std::int32_t* items, std::int64_t n,
                         std::vector<NamedArray>& gradients, const std::int32_t* fresh = nullptr,
                         std::int64_t fresh_n = 0);

  // The (user, item) interactions of step `step` of epoch `epoch`.
  void step_pairs(std::int64_t epoch, std::int64_t step, std::vector<std::int32_t>& users,
                  std::vector<std::int32_t>& items);

  // The items (ascending) whose tuned layers run in step `step` of epoch `epoch`: every trained
  // item, or with items_per_step the step's draw.
  std::vector<std::int32_t> step_items(std::int64_t epoch, std::int64_t step);

  // The cached x_i of every item (items x width; rows of items without interactions are 0). The
  // cache exists when items_per_step samples, or after batch_gradients with `fresh`.
  void cached_inputs(float* out) const;

  // x_i of every item (items x width) through the current weights.
  void item_inputs(float* out, const StopCheck& stop = {}) const;

  // The tuned layers' tensors under their encoder names.
  std::vector<NamedArray> tuned_weights() const;

  std::int64_t items() const;
  std::int64_t width() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semrec::train
