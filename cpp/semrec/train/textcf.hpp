// TextCF training core: a small network, shared by users and items, maps frozen language-model
// embeddings into a collaborative space and is trained on interactions (LibTorch: torch::nn,
// torch::optim). The interface uses plain types (pimpl), so binding code never includes torch.
//
// Model. Node inputs x are rows: users first (each the weighted mean of its history's item
// embeddings, computed by the caller, or by the trainer with user_means), then items (their
// embeddings). h = MLP(x) with
// MLP = Linear(dim, hidden) -> LeakyReLU -> Linear(hidden, factors), or one Linear(dim, factors)
// when hidden == 0. With L > 0 layers, p = (1 / (L + 1)) Σ_l Â^l h over the user-item graph
// (propagation.hpp), else p = h. Vectors v = p / ||p||; score(u, i) = v_u · v_i.
//
// Loss (InfoNCE / sampled softmax). Each training interaction (u, i) is a positive; for it,
// `negatives` items are drawn uniformly, with replacement, from the items that have at least one
// training interaction (items without any are never pushed away: they are the cold items text
// must place). Not rejected: a draw equal to i or to another item of u. The positive's loss is
//   -log( exp(s(u,i)/tau) / (exp(s(u,i)/tau) + Σ_k exp(s(u,n_k)/tau)) ),
// averaged over the batch. Negatives are per positive, as written; the scores are read from
// the dense (batch users x items) product, which costs one GEMM instead of gathering
// batch x negatives item vectors. negatives == 0 is the full softmax: every item of that pool
// in the denominator (the positive included), read from the same product.
//
// Shared negatives (shared_negatives). The batch draws `negatives` items once and every
// positive of the batch is scored against those same items (the loss above, with one row of
// negatives for all). Without propagation a batch then touches few items. Whenever the items a
// batch touches (positives and negatives) are under half the catalogue and there is no
// propagation, only they and the batch's users go through the network (users' inputs then
// come from their means of the items' inputs), so a batch costs the same whatever the
// catalogue's size; the result equals the full forward up to float rounding. The rule holds for
// negatives drawn per positive too, which touch under half only on catalogues several times
// larger than a batch's draws.
//
// Item bias (item_bias). Each logit gains b(i) = w_b . g_i, a linear function of the item's
// hidden layer g_i = LeakyReLU(z_i) (of its input embedding in the linear variant): the
// softmax then has a notion of popularity, and every item, cold ones included, gets its bias
// from its text. The weight is "bias.weight" (1 x hidden, or 1 x dim); no constant term (it
// cancels in the softmax).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "semrec/parallel.hpp"

namespace semrec::train {

// Told, between batches, how many of the epoch's positives are done (for a progress bar).
using BatchProgress = std::function<void(std::int64_t positives_done)>;

struct TextCFConfig {
  std::int64_t hidden = 768;  // 0: the linear variant
  std::int64_t factors = 64;
  double negative_slope = 0.01;  // LeakyReLU
  std::int64_t layers = 2;
  double tau = 0.15;
  std::int64_t negatives = 256;  // 0: full softmax over the pool
  std::int64_t batch_size = 2048;
  double learning_rate = 5e-4;
  double weight_decay = 0.0;  // L2 added to the gradient, as torch::optim::Adam does
  std::uint64_t seed = 0;     // shuffling and negative sampling
  // Most floats in one block of the dense score matrix (rows are processed in blocks).
  std::int64_t score_block = std::int64_t{1} << 24;
  // Users' inputs are the weighted means of their items' inputs (TrainingPairs::values):
  // their first layer is then computed from the items' (a sparse product); the users' rows of
  // `inputs` are not read.
  bool user_means = false;
  bool item_bias = false;         // logits gain b(i) = w_b . g_i (see the header comment)
  bool shared_negatives = false;  // one draw of negatives per batch (see the header comment)
};

// A named float32 tensor, row-major: the network's weights ("l1.weight" (hidden x dim),
// "l1.bias", "l2.weight", "l2.bias"; only "l1.*" (factors x dim) in the linear variant;
// "bias.weight" with item_bias).
struct NamedArray {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// Users x items interactions: canonical CSR structure (rows strictly increasing), with the
// interaction weights (needed only with user_means).
struct TrainingPairs {
  const std::int64_t* indptr = nullptr;
  const std::int32_t* indices = nullptr;
  std::int64_t users = 0, items = 0;
  const float* values = nullptr;
};

class TextCFTrainer {
 public:
  // inputs: (users + items) x dim node inputs, users first. initial: every weight (see
  // NamedArray). Copies everything it needs. Throws std::invalid_argument on bad shapes.
  TextCFTrainer(const TextCFConfig& config, const float* inputs, std::int64_t dim,
                TrainingPairs pairs, const std::vector<NamedArray>& initial);
  ~TextCFTrainer();
  TextCFTrainer(const TextCFTrainer&) = delete;
  TextCFTrainer& operator=(const TextCFTrainer&) = delete;

  // One pass over every training interaction (order shuffled by (seed, epoch)), Adam step per
  // batch; returns the mean loss. stop is polled between batches (throws Interrupted), and
  // progress is told the positives done after each batch (on the calling thread).
  double epoch(std::int64_t epoch_index, const StopCheck& stop = {},
               const BatchProgress& progress = {});

  // The loss of one batch with the given negatives (n x negatives ids) and the gradient of
  // every weight, without updating anything (for checks against a reference).
  double batch_gradients(const std::int32_t* users, const std::int32_t* items, std::int64_t n,
                         const std::int32_t* negatives, std::vector<NamedArray>& gradients);

  // Current vectors v (nodes x factors, users first). With `layer_outputs`, also each layer's
  // output Â^l h, l = 0..layers, as consecutive nodes x factors blocks (before the mean).
  void vectors(float* out, float* layer_outputs = nullptr) const;

  // Each item's bias b(i) (item_bias only; throws std::logic_error otherwise).
  void item_biases(float* out) const;
  bool item_bias() const;

  std::vector<NamedArray> parameters() const;
  void set_parameters(const std::vector<NamedArray>& values);

  std::int64_t nodes() const;
  std::int64_t items() const;
  std::int64_t factors() const;
  std::int64_t negatives() const;  // per positive (0: the full softmax)
  std::int64_t positives() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semrec::train
