#include "semrec/train/encoder_tuning.hpp"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "semrec/train/random.hpp"
#include "semrec/train/sparse.hpp"

namespace semrec::train {

namespace {

const auto kF32 = at::TensorOptions().dtype(at::kFloat);
const auto kI64 = at::TensorOptions().dtype(at::kLong);

// A BERT layer's tensors, in the order layer_forward reads them.
const char* const kLayerTensors[] = {"attention.self.query.weight",
                                     "attention.self.query.bias",
                                     "attention.self.key.weight",
                                     "attention.self.key.bias",
                                     "attention.self.value.weight",
                                     "attention.self.value.bias",
                                     "attention.output.dense.weight",
                                     "attention.output.dense.bias",
                                     "attention.output.LayerNorm.weight",
                                     "attention.output.LayerNorm.bias",
                                     "intermediate.dense.weight",
                                     "intermediate.dense.bias",
                                     "output.dense.weight",
                                     "output.dense.bias",
                                     "output.LayerNorm.weight",
                                     "output.LayerNorm.bias"};
const char* const kEmbeddingTensors[] = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias"};
const char* const kMlpTensors[] = {"l1.weight", "l1.bias", "l2.weight", "l2.bias"};

NamedArray named(const std::string& name, const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  NamedArray a{name, c.sizes().vec(), std::vector<float>(c.numel())};
  std::memcpy(a.values.data(), c.data_ptr<float>(), a.values.size() * sizeof(float));
  return a;
}

// Post-LayerNorm BERT layer on h (batch x length x width); additive: batch x 1 x 1 x length.
at::Tensor layer_forward(const std::vector<at::Tensor>& w, const at::Tensor& h,
                         const at::Tensor& additive, std::int64_t heads, double eps) {
  const std::int64_t b = h.size(0), len = h.size(1), width = h.size(2), d = width / heads;
  const auto split = [&](const at::Tensor& t) {
    return t.view({b, len, heads, d}).transpose(1, 2);
  };
  const at::Tensor q = split(at::linear(h, w[0], w[1]));
  const at::Tensor k = split(at::linear(h, w[2], w[3]));
  const at::Tensor v = split(at::linear(h, w[4], w[5]));
  const at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).mul(1.0 / std::sqrt(double(d)));
  const at::Tensor p = at::softmax(scores + additive, -1);
  const at::Tensor context = at::matmul(p, v).transpose(1, 2).reshape({b, len, width});
  const at::Tensor a =
      at::layer_norm(at::linear(context, w[6], w[7]) + h, {width}, w[8], w[9], eps);
  const at::Tensor f = at::gelu(at::linear(a, w[10], w[11]));
  return at::layer_norm(at::linear(f, w[12], w[13]) + a, {width}, w[14], w[15], eps);
}

// Listed users' inputs: the row-normalised weighted means of their items' (semrec's CSR
// kernel; the backward is the transposed product of the same rows).
struct UserMeans : torch::autograd::Function<UserMeans> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const SparseRows* means, const at::Tensor& rows) {
    ctx->saved_data["means"] = reinterpret_cast<std::int64_t>(means);
    ctx->saved_data["rows"] = rows;
    const at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty({rows.size(0), x.size(1)}, kF32);
    means->multiply_rows(rows.data_ptr<std::int32_t>(), rows.size(0), xc.data_ptr<float>(),
                         x.size(1), out.data_ptr<float>());
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto* means = reinterpret_cast<const SparseRows*>(ctx->saved_data["means"].toInt());
    const at::Tensor rows = ctx->saved_data["rows"].toTensor();
    const at::Tensor g = grads[0].contiguous();
    at::Tensor dx = at::zeros({means->cols(), g.size(1)}, kF32);
    means->add_transposed_rows(rows.data_ptr<std::int32_t>(), rows.size(0), g.data_ptr<float>(),
                               g.size(1), dx.data_ptr<float>());
    return {dx, at::Tensor(), at::Tensor()};
  }
};

// CPU autocast to bfloat16 while in scope (thread-local, as autocast is), the previous state
// restored after; its cache of bf16 weight copies is dropped when the outermost scope ends.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on) : on_(on) {
    if (!on_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCPU);
    was_dtype_ = at::autocast::get_autocast_dtype(at::kCPU);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCPU, was_enabled_);
    at::autocast::set_autocast_dtype(at::kCPU, was_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

// Texts of one forward chunk (consecutive in the caller's order): similar lengths, padded to
// the longest.
struct Chunk {
  at::Tensor below;     // chunk x length x width: the states entering the tuned layers
  at::Tensor additive;  // chunk x 1 x 1 x length: 0 on tokens, the lowest float on padding
  at::Tensor mask;      // chunk x length
  at::Tensor lengths;   // chunk x 1

  // A chunk of `count` texts of the given token counts, padded to the longest: its mask,
  // lengths and additive mask set, `below` still empty.
  static Chunk padded(const std::vector<std::int64_t>& token_counts) {
    const auto count = static_cast<std::int64_t>(token_counts.size());
    const std::int64_t len = *std::max_element(token_counts.begin(), token_counts.end());
    Chunk chunk;
    chunk.mask = at::zeros({count, len}, kF32);
    for (std::int64_t c = 0; c < count; ++c) chunk.mask[c].narrow(0, 0, token_counts[c]).fill_(1);
    chunk.lengths = chunk.mask.sum(1, /*keepdim=*/true);
    chunk.additive =
        ((1.0f - chunk.mask) * std::numeric_limits<float>::lowest()).view({count, 1, 1, len});
    return chunk;
  }
};

}  // namespace

struct EncoderTuner::Impl {
  EncoderTuningConfig cfg;
  std::int64_t layers = 0, width = 0, items = 0;
  std::vector<at::Tensor> embeddings;                  // kEmbeddingTensors order
  std::vector<std::vector<at::Tensor>> frozen, tuned;  // per layer, kLayerTensors order
  std::vector<at::Tensor> mlp;                         // kMlpTensors order
  std::vector<std::int64_t> offsets;                   // every item's tokens
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> pool;       // trained items (>= 1 interaction), shortest first
  std::vector<std::int32_t> pool_slot;  // item -> position in pool, -1 when cold
  std::vector<Chunk> chunks;            // the pool's
  SparseRows means;                     // users x pool
  std::vector<std::int32_t> pos_user, pos_slot;
  std::unique_ptr<torch::optim::Adam> adam;
  std::int64_t order_epoch = -1;  // the epoch `order` is the interactions' order of
  std::vector<std::int64_t> order;

  // Sampled steps (items_per_step): x of each trained item (pool order) as of the last step
  // whose tuned layers ran it; the starting weights' x until then. Never on the autograd tape.
  at::Tensor cache;

  std::int64_t tokens_of(std::int32_t item) const { return offsets[item + 1] - offsets[item]; }

  // items, shortest text first (ties in the given order): chunks then carry little padding.
  void by_length(std::vector<std::int32_t>& ids_of_items) const {
    std::stable_sort(ids_of_items.begin(), ids_of_items.end(),
                     [&](std::int32_t a, std::int32_t b) { return tokens_of(a) < tokens_of(b); });
  }

  bool sampling() const {
    return cfg.items_per_step > 0 && cfg.items_per_step < static_cast<std::int64_t>(pool.size());
  }

  // The cache from the current weights (stop polled between chunks).
  void fill_cache(const StopCheck& stop) {
    at::NoGradGuard no_grad;
    cache = pooled(chunks, stop);
  }

  // Pool slots whose tuned layers run in a sampled step: a uniform sample of items_per_step of
  // them (partial Fisher-Yates on `stream`), ascending, so shortest text first. Drawn apart
  // from the batch on purpose: with the batch's positives drawn first, a fresh input would mean
  // "positive" and a stale one "negative", a shortcut the network learns instead of the text
  // (measured on MovieLens-100k: it erased the gain of fine-tuning).
  std::vector<std::int32_t> draw(std::uint64_t stream) const {
    std::vector<std::int32_t> slots(pool.size());
    std::iota(slots.begin(), slots.end(), 0);
    const auto total = static_cast<std::int64_t>(slots.size());
    SplitMix rng{stream};
    for (std::int64_t k = 0; k < cfg.items_per_step; ++k) {
      const auto pick = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(total - k)));
      std::swap(slots[k], slots[k + pick]);
    }
    slots.resize(cfg.items_per_step);
    std::sort(slots.begin(), slots.end());
    return slots;
  }

  // Chunks of the listed pool slots (ascending), cut from the pool's stored chunks: a text's
  // states are the first (its token count) rows of its row there.
  std::vector<Chunk> gather(const std::vector<std::int32_t>& slots) const {
    std::vector<Chunk> out;
    const auto n = static_cast<std::int64_t>(slots.size());
    for (std::int64_t first = 0; first < n; first += cfg.bucket) {
      const std::int64_t count = std::min(cfg.bucket, n - first);
      std::vector<std::int64_t> counts(count);
      for (std::int64_t c = 0; c < count; ++c) counts[c] = tokens_of(pool[slots[first + c]]);
      Chunk chunk = Chunk::padded(counts);
      chunk.below = at::zeros({count, chunk.mask.size(1), width}, kF32);
      for (std::int64_t c = 0; c < count; ++c) {
        const std::int32_t s = slots[first + c];
        const at::Tensor& from = chunks[s / cfg.bucket].below;
        chunk.below[c].narrow(0, 0, counts[c]).copy_(from[s % cfg.bucket].narrow(0, 0, counts[c]));
      }
      out.push_back(std::move(chunk));
    }
    return out;
  }

  // Chunks of the listed items, frozen layers already applied (no gradients).
  std::vector<Chunk> make_chunks(const std::vector<std::int32_t>& order,
                                 const StopCheck& stop) const {
    at::NoGradGuard no_grad;
    std::vector<Chunk> out;
    const std::int64_t n = static_cast<std::int64_t>(order.size());
    for (std::int64_t first = 0; first < n; first += cfg.bucket) {
      if (stop && stop()) throw Interrupted();
      const std::int64_t count = std::min(cfg.bucket, n - first);
      std::vector<std::int64_t> counts(count);
      for (std::int64_t c = 0; c < count; ++c) counts[c] = tokens_of(order[first + c]);
      Chunk chunk = Chunk::padded(counts);
      const std::int64_t len = chunk.mask.size(1);
      at::Tensor tokens = at::zeros({count, len}, kI64);
      auto t = tokens.accessor<std::int64_t, 2>();
      for (std::int64_t c = 0; c < count; ++c) {
        const std::int32_t i = order[first + c];
        for (std::int64_t k = offsets[i]; k < offsets[i + 1]; ++k) t[c][k - offsets[i]] = ids[k];
      }
      const at::Tensor positions = at::arange(len, kI64);
      at::Tensor h = at::embedding(embeddings[0], tokens) +
                     at::embedding(embeddings[1], positions).unsqueeze(0) + embeddings[2][0];
      h = at::layer_norm(h, {width}, embeddings[3], embeddings[4], cfg.layer_norm_eps);
      for (const auto& w : frozen) {
        h = layer_forward(w, h, chunk.additive, cfg.heads, cfg.layer_norm_eps);
      }
      chunk.below = h;
      out.push_back(std::move(chunk));
    }
    return out;
  }

  static at::Tensor normalise(const at::Tensor& v) {
    return v / v.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  }

  // x of one chunk's texts through the tuned layers: normalised mean of the token states.
  // With bf16 the layers run under autocast; the pooling and everything after are float32.
  // The scope is per chunk on purpose: each chunk casts the weights afresh, so its weight
  // gradients return to float32 before the chunks' are summed (one cast shared by every chunk
  // would sum them in bf16).
  at::Tensor chunk_x(const Chunk& c) const {
    at::Tensor h = c.below;
    {
      const Bf16Autocast autocast(cfg.bf16);
      for (const auto& w : tuned) {
        h = layer_forward(w, h, c.additive, cfg.heads, cfg.layer_norm_eps);
      }
    }
    h = h.to(at::kFloat);
    return normalise((h * c.mask.unsqueeze(2)).sum(1) / c.lengths);
  }

  // x of the chunks' texts (rows in chunk order); `stop` polled between chunks.
  at::Tensor pooled(const std::vector<Chunk>& parts, const StopCheck& stop = {}) const {
    std::vector<at::Tensor> xs;
    for (const Chunk& c : parts) {
      if (stop && stop()) throw Interrupted();
      xs.push_back(chunk_x(c));
    }
    return at::cat(xs);
  }

  at::Tensor network(const at::Tensor& x) const {
    const at::Tensor g = at::leaky_relu(at::linear(x, mlp[0], mlp[1]), cfg.negative_slope);
    return at::linear(g, mlp[2], mlp[3]);
  }

  // Loss of (users, pool slots) interactions on the pool's x, averaged; autograd graph attached.
  at::Tensor loss(const at::Tensor& x, const std::int32_t* bu, const std::int32_t* slots,
                  std::int64_t n) const {
    const at::Tensor vi = normalise(network(x));
    // Distinct users of the batch: one row of the score matrix each.
    std::vector<std::int32_t> distinct(bu, bu + n);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<std::int64_t> row_of(n), slot_of(n);
    for (std::int64_t b = 0; b < n; ++b) {
      row_of[b] = std::lower_bound(distinct.begin(), distinct.end(), bu[b]) - distinct.begin();
      slot_of[b] = slots[b];
    }
    const at::Tensor users = at::tensor(distinct, at::TensorOptions().dtype(at::kInt));
    const at::Tensor xu = UserMeans::apply(x, &means, users);
    const at::Tensor vu = normalise(network(xu));
    const at::Tensor s = at::mm(vu, vi.t()).mul(1.0 / cfg.tau);
    const at::Tensor lse = at::logsumexp(s, {1});
    const at::Tensor r = at::tensor(row_of, kI64), c = at::tensor(slot_of, kI64);
    return (lse.index_select(0, r) - s.index({r, c})).mean();
  }

  // The batch's loss, its gradients accumulated into the trained weights; `parts` run the tuned
  // layers: the pool's chunks, or the chunks of the pool slots `fresh` (int64, ascending), the
  // other items' x then taken from the cache, without gradient. The loss is taken on a detached
  // x first; then each chunk back-propagates its rows of dL/dx on its own, through the
  // activations its forward pass kept or, with recompute, through its tuned layers run again
  // (so only one chunk's activations are alive at a time). One backward call per chunk, not one
  // for them all, so that `stop` is polled between chunks in both passes, recompute or not.
  // Returns the loss and the x that `parts` gave (detached). An interruption leaves gradients
  // behind but no update (the next step zeroes them).
  std::pair<at::Tensor, at::Tensor> backward(const std::vector<Chunk>& parts,
                                             const at::Tensor& fresh, const std::int32_t* bu,
                                             const std::int32_t* slots, std::int64_t n,
                                             const StopCheck& stop = {}) const {
    std::vector<at::Tensor> kept;  // each chunk's x with its autograd graph (no recompute)
    at::Tensor xs;
    if (cfg.recompute) {
      at::NoGradGuard no_grad;
      xs = pooled(parts, stop);
    } else {
      for (const Chunk& c : parts) {
        if (stop && stop()) throw Interrupted();
        kept.push_back(chunk_x(c));
      }
      at::NoGradGuard no_grad;
      xs = at::cat(kept);
    }
    xs.requires_grad_(true);
    const at::Tensor l = loss(fresh.defined() ? cache.index_copy(0, fresh, xs) : xs, bu, slots, n);
    l.backward();
    const at::Tensor dx = xs.grad();
    std::int64_t first = 0;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      if (stop && stop()) throw Interrupted();
      const std::int64_t count = parts[k].below.size(0);
      const at::Tensor x = cfg.recompute ? chunk_x(parts[k]) : std::exchange(kept[k], {});
      x.backward(dx.narrow(0, first, count));
      first += count;
    }
    return {l, xs.detach()};
  }

  std::int64_t steps() const {
    return (static_cast<std::int64_t>(pos_user.size()) + cfg.batch_size - 1) / cfg.batch_size;
  }
  void check_step(std::int64_t step) const {
    if (step < 0 || step >= steps()) throw std::invalid_argument("EncoderTuner: no such step");
  }

  // Pool slots as an index tensor (index_copy's).
  static at::Tensor rows_of(const std::vector<std::int32_t>& slots) {
    return at::tensor(std::vector<std::int64_t>(slots.begin(), slots.end()), kI64);
  }

  // Interactions order[first .. first + n) of epoch `epoch`: their users and pool slots.
  std::int64_t batch(std::int64_t epoch, std::int64_t step, std::vector<std::int32_t>& bu,
                     std::vector<std::int32_t>& bs) {
    const auto total = static_cast<std::int64_t>(pos_user.size());
    if (order_epoch != epoch) {
      order = epoch_order(total, cfg.seed, epoch);
      order_epoch = epoch;
    }
    const std::int64_t first = step * cfg.batch_size;
    const std::int64_t n = std::min(cfg.batch_size, total - first);
    bu.resize(n);
    bs.resize(n);
    for (std::int64_t b = 0; b < n; ++b) {
      bu[b] = pos_user[order[first + b]];
      bs[b] = pos_slot[order[first + b]];
    }
    return n;
  }

  // The draw of a sampled step: its own stream (seed, epoch, step + 1; the epoch's order uses
  // (seed, epoch, 0)).
  std::vector<std::int32_t> step_draw(std::int64_t epoch, std::int64_t step) const {
    return draw(
        derive(cfg.seed, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(step) + 1));
  }

  std::vector<at::Tensor> trained() const {
    std::vector<at::Tensor> all;
    for (const auto& w : tuned) all.insert(all.end(), w.begin(), w.end());
    all.insert(all.end(), mlp.begin(), mlp.end());
    return all;
  }
  std::vector<std::string> trained_names() const {
    std::vector<std::string> names;
    for (std::int64_t l = layers - cfg.tuned_layers; l < layers; ++l) {
      for (const char* t : kLayerTensors)
        names.push_back("encoder.layer." + std::to_string(l) + "." + t);
    }
    for (const char* t : kMlpTensors) names.emplace_back(t);
    return names;
  }
};

EncoderTuner::EncoderTuner(const EncoderTuningConfig& config,
                           const std::vector<NamedArray>& encoder, std::int64_t layers,
                           const std::vector<NamedArray>& mlp, TokenIds tokens, TrainingPairs pairs,
                           const StopCheck& stop)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = config;
  m.layers = layers;
  if (config.heads < 1 || config.tuned_layers < 1 || config.tuned_layers > layers ||
      config.hidden < 1 || config.factors < 1 || !(config.tau > 0) || config.batch_size < 1 ||
      config.bucket < 1 || !(config.learning_rate >= 0) || !(config.mlp_learning_rate >= 0) ||
      config.items_per_step < 0) {
    throw std::invalid_argument("EncoderTuner: invalid configuration");
  }
  std::map<std::string, const NamedArray*> by_name;
  for (const NamedArray& a : encoder) by_name[a.name] = &a;
  for (const NamedArray& a : mlp) by_name[a.name] = &a;
  const auto take = [&](const std::string& name, bool trained) {
    const auto found = by_name.find(name);
    if (found == by_name.end()) throw std::invalid_argument("EncoderTuner: no tensor " + name);
    const NamedArray& a = *found->second;
    std::int64_t count = 1;
    for (std::int64_t d : a.shape) count *= d;
    if (a.shape.empty() || count != static_cast<std::int64_t>(a.values.size())) {
      throw std::invalid_argument("EncoderTuner: tensor " + name + " has a wrong size");
    }
    at::Tensor t = at::from_blob(const_cast<float*>(a.values.data()), a.shape, kF32).clone();
    if (trained) t.set_requires_grad(true);
    return t;
  };
  for (const char* name : kEmbeddingTensors) m.embeddings.push_back(take(name, false));
  const at::Tensor& words = m.embeddings[0];
  if (words.dim() != 2) throw std::invalid_argument("EncoderTuner: word embeddings not 2-D");
  m.width = words.size(1);
  if (m.width % config.heads != 0) {
    throw std::invalid_argument("EncoderTuner: the width is not a multiple of the heads");
  }
  for (std::int64_t l = 0; l < layers; ++l) {
    const bool trained = l >= layers - config.tuned_layers;
    std::vector<at::Tensor> w;
    for (const char* t : kLayerTensors) {
      w.push_back(take("encoder.layer." + std::to_string(l) + "." + t, trained));
    }
    const std::int64_t inner = w[10].size(0);
    const std::vector<std::vector<std::int64_t>> shapes = {
        {m.width, m.width}, {m.width}, {m.width, m.width}, {m.width}, {m.width, m.width}, {m.width},
        {m.width, m.width}, {m.width}, {m.width},          {m.width}, {inner, m.width},   {inner},
        {m.width, inner},   {m.width}, {m.width},          {m.width}};
    for (std::size_t k = 0; k < w.size(); ++k) {
      if (w[k].sizes().vec() != shapes[k]) {
        throw std::invalid_argument("EncoderTuner: layer " + std::to_string(l) + "'s " +
                                    kLayerTensors[k] + " has a wrong shape");
      }
    }
    (trained ? m.tuned : m.frozen).push_back(std::move(w));
  }
  for (const char* name : kMlpTensors) m.mlp.push_back(take(name, true));
  if (m.mlp[0].sizes().vec() != std::vector<std::int64_t>{config.hidden, m.width} ||
      m.mlp[1].sizes().vec() != std::vector<std::int64_t>{config.hidden} ||
      m.mlp[2].sizes().vec() != std::vector<std::int64_t>{config.factors, config.hidden} ||
      m.mlp[3].sizes().vec() != std::vector<std::int64_t>{config.factors}) {
    throw std::invalid_argument("EncoderTuner: the MLP's shapes do not match hidden / factors");
  }

  m.items = pairs.items;
  if (tokens.texts != m.items || m.items < 1) {
    throw std::invalid_argument("EncoderTuner: one text per item is needed");
  }
  m.offsets.assign(tokens.offsets, tokens.offsets + m.items + 1);
  if (m.offsets[0] != 0) throw std::invalid_argument("EncoderTuner: offsets must start at 0");
  const std::int64_t positions = m.embeddings[1].size(0), vocab = words.size(0);
  for (std::int64_t i = 0; i < m.items; ++i) {
    const std::int64_t len = m.offsets[i + 1] - m.offsets[i];
    if (len < 1 || len > positions) {
      throw std::invalid_argument("EncoderTuner: every text needs 1 .. max positions tokens");
    }
  }
  m.ids.assign(tokens.ids, tokens.ids + m.offsets[m.items]);
  for (std::int32_t id : m.ids) {
    if (id < 0 || id >= vocab) throw std::invalid_argument("EncoderTuner: token id out of range");
  }

  const std::int64_t nnz = pairs.indptr[pairs.users];
  if (nnz < 1) throw std::invalid_argument("EncoderTuner: no interactions");
  std::vector<char> warm(m.items, 0);
  for (std::int64_t k = 0; k < nnz; ++k) warm[pairs.indices[k]] = 1;
  for (std::int32_t i = 0; i < m.items; ++i) {
    if (warm[i]) m.pool.push_back(i);
  }
  m.by_length(m.pool);
  m.pool_slot.assign(m.items, -1);
  for (std::size_t s = 0; s < m.pool.size(); ++s)
    m.pool_slot[m.pool[s]] = static_cast<std::int32_t>(s);

  std::vector<std::int64_t> ptr(pairs.indptr, pairs.indptr + pairs.users + 1);
  std::vector<std::int32_t> idx(nnz);
  std::vector<float> val(nnz);
  for (std::int64_t u = 0; u < pairs.users; ++u) {
    double mass = 0.0;
    for (std::int64_t k = ptr[u]; k < ptr[u + 1]; ++k) mass += pairs.values ? pairs.values[k] : 1.0;
    if (ptr[u + 1] > ptr[u] && !(mass > 0)) {
      throw std::invalid_argument("EncoderTuner: a user's weights must sum to > 0");
    }
    for (std::int64_t k = ptr[u]; k < ptr[u + 1]; ++k) {
      idx[k] = m.pool_slot[pairs.indices[k]];
      val[k] = static_cast<float>((pairs.values ? pairs.values[k] : 1.0) / mass);
      m.pos_user.push_back(static_cast<std::int32_t>(u));
      m.pos_slot.push_back(idx[k]);
    }
  }
  m.means = SparseRows(std::move(ptr), std::move(idx), std::move(val),
                       static_cast<std::int64_t>(m.pool.size()));
  m.chunks = m.make_chunks(m.pool, stop);
  if (m.sampling()) m.fill_cache(stop);

  std::vector<at::Tensor> layer_params;
  for (const auto& w : m.tuned) layer_params.insert(layer_params.end(), w.begin(), w.end());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(layer_params,
                      std::make_unique<torch::optim::AdamOptions>(config.learning_rate));
  groups.emplace_back(m.mlp, std::make_unique<torch::optim::AdamOptions>(config.mlp_learning_rate));
  m.adam = std::make_unique<torch::optim::Adam>(std::move(groups),
                                                torch::optim::AdamOptions(config.learning_rate));
}

EncoderTuner::~EncoderTuner() = default;

std::int64_t EncoderTuner::steps_per_epoch() const { return impl_->steps(); }

double EncoderTuner::step(std::int64_t epoch, std::int64_t step, const StopCheck& stop) {
  Impl& m = *impl_;
  m.check_step(step);
  std::vector<std::int32_t> bu, bs;
  const std::int64_t n = m.batch(epoch, step, bu, bs);
  m.adam->zero_grad();
  if (!m.sampling()) {
    const at::Tensor loss = m.backward(m.chunks, at::Tensor(), bu.data(), bs.data(), n, stop).first;
    m.adam->step();
    return loss.item<double>();
  }
  const std::vector<std::int32_t> fresh = m.step_draw(epoch, step);
  const at::Tensor rows = Impl::rows_of(fresh);
  const auto [loss, xs] = m.backward(m.gather(fresh), rows, bu.data(), bs.data(), n, stop);
  m.adam->step();
  m.cache.index_copy_(0, rows, xs);  // the x this step saw (the weights before its update)
  return loss.item<double>();
}

void EncoderTuner::step_pairs(std::int64_t epoch, std::int64_t step,
                              std::vector<std::int32_t>& users, std::vector<std::int32_t>& items) {
  Impl& m = *impl_;
  m.check_step(step);
  m.batch(epoch, step, users, items);
  for (std::int32_t& slot : items) slot = m.pool[slot];
}

std::vector<std::int32_t> EncoderTuner::step_items(std::int64_t epoch, std::int64_t step) {
  Impl& m = *impl_;
  m.check_step(step);
  std::vector<std::int32_t> out;
  if (!m.sampling()) {
    out = m.pool;
  } else {
    for (std::int32_t s : m.step_draw(epoch, step)) out.push_back(m.pool[s]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void EncoderTuner::cached_inputs(float* out) const {
  const Impl& m = *impl_;
  if (!m.cache.defined()) throw std::logic_error("EncoderTuner: no cache (no sampled step)");
  std::fill(out, out + m.items * m.width, 0.0f);
  const at::Tensor c = m.cache.contiguous();
  for (std::size_t s = 0; s < m.pool.size(); ++s) {
    std::memcpy(out + m.pool[s] * m.width, c.data_ptr<float>() + s * m.width,
                m.width * sizeof(float));
  }
}

double EncoderTuner::batch_gradients(const std::int32_t* users, const std::int32_t* items,
                                     std::int64_t n, std::vector<NamedArray>& gradients,
                                     const std::int32_t* fresh, std::int64_t fresh_n) {
  Impl& m = *impl_;
  if (n < 1) throw std::invalid_argument("EncoderTuner: an empty batch");
  if (fresh != nullptr && fresh_n < 1) throw std::invalid_argument("EncoderTuner: no fresh items");
  std::vector<std::int32_t> fresh_slots;
  for (std::int64_t k = 0; k < fresh_n; ++k) {
    if (fresh[k] < 0 || fresh[k] >= m.items || m.pool_slot[fresh[k]] < 0) {
      throw std::invalid_argument("EncoderTuner: a fresh item is out of range or cold");
    }
    fresh_slots.push_back(m.pool_slot[fresh[k]]);
  }
  std::sort(fresh_slots.begin(), fresh_slots.end());
  if (std::adjacent_find(fresh_slots.begin(), fresh_slots.end()) != fresh_slots.end()) {
    throw std::invalid_argument("EncoderTuner: fresh items repeat");
  }
  std::vector<std::int32_t> slots(n);
  for (std::int64_t b = 0; b < n; ++b) {
    if (users[b] < 0 || users[b] >= m.means.rows() || items[b] < 0 || items[b] >= m.items ||
        m.pool_slot[items[b]] < 0) {
      throw std::invalid_argument("EncoderTuner: a batch pair is out of range or cold");
    }
    slots[b] = m.pool_slot[items[b]];
  }
  m.adam->zero_grad();
  at::Tensor loss;
  if (fresh == nullptr) {
    loss = m.backward(m.chunks, at::Tensor(), users, slots.data(), n).first;
  } else {
    if (!m.cache.defined()) m.fill_cache({});
    loss =
        m.backward(m.gather(fresh_slots), Impl::rows_of(fresh_slots), users, slots.data(), n).first;
  }
  const std::vector<at::Tensor> weights = m.trained();
  const std::vector<std::string> names = m.trained_names();
  gradients.clear();
  for (std::size_t k = 0; k < weights.size(); ++k)
    gradients.push_back(named(names[k], weights[k].grad()));
  m.adam->zero_grad();
  return loss.item<double>();
}

void EncoderTuner::item_inputs(float* out, const StopCheck& stop) const {
  const Impl& m = *impl_;
  at::NoGradGuard no_grad;
  std::vector<std::int32_t> order(m.items);
  std::iota(order.begin(), order.end(), 0);
  m.by_length(order);
  const at::Tensor x = m.pooled(m.make_chunks(order, stop), stop).contiguous();
  const float* src = x.data_ptr<float>();
  for (std::int64_t r = 0; r < m.items; ++r) {
    std::memcpy(out + order[r] * m.width, src + r * m.width, m.width * sizeof(float));
  }
}

std::vector<NamedArray> EncoderTuner::tuned_weights() const {
  const std::vector<at::Tensor> weights = impl_->trained();
  const std::vector<std::string> names = impl_->trained_names();
  std::vector<NamedArray> out;
  const std::size_t layer_tensors = weights.size() - impl_->mlp.size();  // the MLP comes last
  for (std::size_t k = 0; k < layer_tensors; ++k) out.push_back(named(names[k], weights[k]));
  return out;
}

std::int64_t EncoderTuner::items() const { return impl_->items; }
std::int64_t EncoderTuner::width() const { return impl_->width; }

}  // namespace semrec::train
