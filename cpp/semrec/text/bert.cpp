#include "semrec/text/bert.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/InferenceMode.h>

#include "semrec/parallel.hpp"
#include "semrec/text/attention.hpp"
#include "semrec/text/dense.hpp"
#include "semrec/text/pooling_ops.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>

namespace semrec::text {

namespace {

at::ScalarType dtype_of(const std::string& name) {
  if (name == "F32") return at::kFloat;
  if (name == "F16") return at::kHalf;
  if (name == "BF16") return at::kBFloat16;
  throw SafetensorsError("unsupported tensor dtype " + name);
}

struct Layer {
  Dense qkv, out, inter, down;
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
};

}  // namespace

struct BertEncoder::Impl {
  BertConfig cfg;
  std::string kernels;
  at::Tensor word, position, token_type0, emb_ln_w, emb_ln_b;
  std::vector<Layer> layers;

  // ffn_peaks, when given, receives each layer's largest |activation| per channel at the
  // feed-forward output layer's input (calibration).
  at::Tensor forward(const at::Tensor& ids, const std::vector<std::int64_t>& lengths,
                     const StopCheck& stop, std::vector<at::Tensor>* ffn_peaks = nullptr) const;
  void quantize_ffn_outputs(const std::vector<std::array<at::Tensor, 4>>& ffn_weights);
};

namespace {

// int8: the feed-forward output layer's input channels kept in float32. After GELU a few
// channels per layer reach 3-20x the others' magnitude (MiniLM: one at 14-25 in layers 0-3
// against a median of 1.2-1.4); quantised with the rest they set every row's step.
constexpr std::int64_t kFfnOutliers = 16;

// Batch-per-thread encoding (BertEncoder::encode): batches per thread to aim for, and the
// fewest texts a thread's batch may hold (below it the threads share each batch instead).
constexpr std::int64_t kBatchesPerThread = 4;
constexpr std::int64_t kMinThreadBatch = 8;

// Calibration input for finding those channels: token ids drawn from a fixed generator, as the
// outlier channels are a property of the weights (random ids find the same largest channel in
// every layer as real text); no text or file is needed.
std::pair<at::Tensor, std::vector<std::int64_t>> calibration_ids(const BertConfig& cfg) {
  const std::int64_t sequences = 8, len = std::min<std::int64_t>(128, cfg.max_positions);
  // Skip BERT's special and unused ids at the start of the vocabulary when there is room.
  const std::int64_t first = cfg.vocab_size > 2000 ? 1000 : 0;
  std::mt19937 generator(20261202);
  at::Tensor ids = at::empty({sequences * len}, at::kLong);
  auto* p = ids.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < sequences * len; ++i) {
    p[i] = first + static_cast<std::int64_t>(generator() % (cfg.vocab_size - first));
  }
  return {ids, std::vector<std::int64_t>(sequences, len)};
}

}  // namespace

BertEncoder::BertEncoder(const BertConfig& config, const std::string& path,
                         std::uint64_t data_start, const std::vector<TensorEntry>& entries,
                         const std::string& prefix)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = config;
  const std::string& precision = config.precision;
  if (precision != "fp32" && precision != "bf16" && precision != "int8") {
    throw std::invalid_argument("precision must be fp32, bf16 or int8, got " + precision);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::map<std::string, const TensorEntry*> by_name;
  for (const auto& e : entries) {
    if (e.name.rfind(prefix, 0) == 0) by_name[e.name.substr(prefix.size())] = &e;
  }
  const at::ScalarType compute = precision == "bf16" ? at::kBFloat16 : at::kFloat;
  auto load = [&](const std::string& name, std::vector<std::int64_t> shape) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw SafetensorsError("missing tensor " + prefix + name);
    const TensorEntry& e = *it->second;
    if (e.shape != shape) throw SafetensorsError("tensor " + e.name + " has the wrong shape");
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype_of(e.dtype)));
    if (static_cast<std::uint64_t>(t.nbytes()) != e.end - e.begin) {
      throw SafetensorsError("tensor " + e.name + ": byte size does not match its shape");
    }
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    if (!in) throw SafetensorsError("cannot read tensor " + e.name);
    t = t.to(at::kFloat);
    if (!at::isfinite(t).all().item<bool>()) {
      throw SafetensorsError("tensor " + e.name + " holds NaN or infinite values");
    }
    return t;
  };
  const std::int64_t h = config.hidden, inter = config.intermediate;
  auto& m = *impl_;
  m.word = load("embeddings.word_embeddings.weight", {config.vocab_size, h});
  m.position = load("embeddings.position_embeddings.weight", {config.max_positions, h});
  m.token_type0 = load("embeddings.token_type_embeddings.weight", {config.type_vocab_size, h})[0];
  m.emb_ln_w = load("embeddings.LayerNorm.weight", {h});
  m.emb_ln_b = load("embeddings.LayerNorm.bias", {h});
  const DenseKernel kernel = precision == "int8"                       ? DenseKernel::int8
                             : config.onednn && onednn_usable(compute) ? DenseKernel::onednn
                                                                       : DenseKernel::aten;
  if (kernel == DenseKernel::int8) {
    m.kernels = "int8 FBGEMM " + int8_kernel_isa() +
                (config.reduce_range ? " (7-bit weights; " : " (") + std::to_string(kFfnOutliers) +
                " fp32 outlier channels in the FFN output)";
  } else {
    m.kernels = precision + (kernel == DenseKernel::onednn ? " oneDNN" : " ATen");
  }
  auto make_dense = [&](at::Tensor w, at::Tensor b) {
    return Dense(w.to(compute), b.to(compute), kernel,
                 config.reduce_range ? Int8Range::seven_bit_weights : Int8Range::full);
  };
  const DenseKernel fp32_kernel =
      config.onednn && onednn_usable(at::kFloat) ? DenseKernel::onednn : DenseKernel::aten;
  auto dense = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
    return make_dense(load(name + ".weight", {rows, cols}), load(name + ".bias", {rows}));
  };
  auto norm = [&](const std::string& name) { return load(name, {h}).to(compute).contiguous(); };
  std::vector<std::array<at::Tensor, 4>> ffn_weights;  // int8: (W, b) of both FFN layers
  for (std::int64_t l = 0; l < config.layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    Layer L;
    // Fused QKV: one (3h x h) GEMM instead of three.
    const std::string self = p + "attention.self.";
    L.qkv =
        make_dense(at::cat({load(self + "query.weight", {h, h}), load(self + "key.weight", {h, h}),
                            load(self + "value.weight", {h, h})}),
                   at::cat({load(self + "query.bias", {h}), load(self + "key.bias", {h}),
                            load(self + "value.bias", {h})}));
    // Without VNNI the attention output has 7-bit weights like QKV (parity corpus, AVX2: worst
    // cosine 0.9909 to sentence-transformers; 7-bit activations instead: 0.9898).
    L.out = dense(p + "attention.output.dense", h, h);
    L.ln1_w = norm(p + "attention.output.LayerNorm.weight");
    L.ln1_b = norm(p + "attention.output.LayerNorm.bias");
    L.inter = dense(p + "intermediate.dense", inter, h);
    if (kernel == DenseKernel::int8) {
      // Float32 until calibration has found its outlier input channels (below).
      std::array<at::Tensor, 4> w{load(p + "intermediate.dense.weight", {inter, h}),
                                  load(p + "intermediate.dense.bias", {inter}),
                                  load(p + "output.dense.weight", {h, inter}),
                                  load(p + "output.dense.bias", {h})};
      L.down = Dense(w[2], w[3], fp32_kernel);
      ffn_weights.push_back(std::move(w));
    } else {
      L.down = dense(p + "output.dense", h, inter);
    }
    L.ln2_w = norm(p + "output.LayerNorm.weight");
    L.ln2_b = norm(p + "output.LayerNorm.bias");
    m.layers.push_back(std::move(L));
  }
  for (at::Tensor* t : {&m.word, &m.position, &m.token_type0, &m.emb_ln_w, &m.emb_ln_b}) {
    *t = t->to(compute).contiguous();
  }
  if (kernel == DenseKernel::int8) m.quantize_ffn_outputs(ffn_weights);
}

// The feed-forward output layers go int8 with their kFfnOutliers largest input channels in
// float32: one calibration pass finds them, then both FFN layers are rebuilt with those
// channels moved last (rows of the first layer, columns of the second: the same function), so
// the int8 kernel takes a contiguous prefix of each row and the outliers a contiguous tail.
void BertEncoder::Impl::quantize_ffn_outputs(
    const std::vector<std::array<at::Tensor, 4>>& ffn_weights) {
  std::vector<at::Tensor> peaks;
  {
    c10::InferenceMode inference;
    const auto [ids, lengths] = calibration_ids(cfg);
    forward(ids, lengths, {}, &peaks);
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& [wi, bi, wd, bd] = ffn_weights[l];
    const std::int64_t channels = wi.size(0), tail = std::min(kFfnOutliers, channels / 2);
    // Largest peaks last, ties by channel index: the same order on every machine.
    const at::Tensor order = std::get<1>(at::sort(peaks[l], /*stable=*/true, 0, false));
    const at::Tensor outliers = std::get<0>(at::sort(order.slice(0, channels - tail)));
    at::Tensor is_outlier = at::zeros({channels}, at::kBool);
    is_outlier.index_fill_(0, outliers, true);
    const at::Tensor perm = at::cat({at::nonzero(~is_outlier).view({-1}), outliers});
    layers[l].inter = Dense(wi.index_select(0, perm), bi.index_select(0, perm), DenseKernel::int8,
                            cfg.reduce_range ? Int8Range::seven_bit_weights : Int8Range::full);
    // Without VNNI, 7-bit activations rather than 7-bit weights: this layer's error comes from
    // its weights (parity corpus, AVX2: worst cosine 0.9863 with 7-bit weights, 0.9913 with
    // 7-bit activations).
    layers[l].down =
        Dense(wd.index_select(1, perm), bd, DenseKernel::int8,
              cfg.reduce_range ? Int8Range::seven_bit_activations : Int8Range::full, tail);
  }
}

BertEncoder::~BertEncoder() = default;

std::int64_t BertEncoder::dim() const { return impl_->cfg.hidden; }

std::string BertEncoder::kernels() const { return impl_->kernels; }

// ids: the batch's token sequences one after another (T,) int64; lengths: theirs (b,). Returns
// pooled (b, hidden) float32. No padding anywhere: the dense layers, LayerNorms and GELU work
// row by row on the T real tokens, attention runs per sequence on its own tokens, and pooling
// sums each sequence's rows in order, so a text's vector is bitwise the same whatever batch it
// is encoded in. (Padding did change it: SDPA over a padded, masked sequence rounds differently
// from SDPA over the sequence alone, ~1e-7, and int8's activation rounding amplified that to
// 0.013 per component.)
at::Tensor BertEncoder::Impl::forward(const at::Tensor& ids,
                                      const std::vector<std::int64_t>& lengths,
                                      const StopCheck& stop,
                                      std::vector<at::Tensor>* ffn_peaks) const {
  const auto b = static_cast<std::int64_t>(lengths.size());
  const std::int64_t tokens = ids.size(0), h = cfg.hidden, heads = cfg.heads;
  const double eps = cfg.layer_norm_eps;
  std::vector<std::int64_t> offsets(b + 1, 0);
  for (std::int64_t i = 0; i < b; ++i) offsets[i + 1] = offsets[i] + lengths[i];
  // Each stage is a named scope in torch's profiler (benchmarks/encoder.py --profile); the
  // scopes cost nothing while no profiler is running.
  at::Tensor x;
  {
    RECORD_USER_SCOPE("semrec::embeddings");
    at::Tensor positions = at::empty({tokens}, at::kLong);
    auto* pp = positions.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < b; ++i) std::iota(pp + offsets[i], pp + offsets[i + 1], 0);
    x = at::embedding(word, ids) + at::embedding(position, positions) + token_type0;
    x = at::layer_norm(x, {h}, emb_ln_w, emb_ln_b, eps);
  }
  // The int8 layers' two largest results, each overwritten by the next layer's once read, and
  // the attention's output, likewise (fresh allocations this size fault on every page).
  at::Tensor qkv_memory, ffn_memory, attention_memory;
  QuantizedRows ffn_codes;  // the int8 FFN's intermediate, quantised (reused likewise)
  // Per-text tasks take the texts in zigzag order (longest, shortest, 2nd longest, ...; the
  // batch is sorted longest first), so each thread's contiguous share holds as many tokens.
  std::vector<std::int64_t> zigzag(b);
  for (std::int64_t k = 0; k < b; ++k) zigzag[k] = k % 2 == 0 ? k / 2 : b - 1 - k / 2;
  for (const Layer& L : layers) {
    if (stop && stop()) throw Interrupted();
    at::Tensor qkv, a, f;
    {
      RECORD_USER_SCOPE("semrec::qkv_dense");
      qkv = L.qkv(x, Epilogue::none, nullptr, &qkv_memory);
    }
    {
      RECORD_USER_SCOPE("semrec::attention");
      if (!attention_memory.defined()) attention_memory = at::empty({tokens, h}, qkv.options());
      a = attention_memory;
      // One sequence per task: SDPA inside a parallel region runs on its one thread, so short
      // sequences pay no fork/join each (and a sequence's result is the same as when its SDPA
      // call splits its heads over the threads: each output row is computed the same way by
      // one thread). The tasks take the texts in zigzag order. float32 sequences with 32-wide
      // heads take semrec's own attention loops (attention.hpp), the rest (bf16, other widths)
      // SDPA.
      const bool own_loops = qkv.scalar_type() == at::kFloat && h / heads == kHeadDim;
      if (own_loops) qkv = qkv.contiguous();
      const float* qkv_data = own_loops ? qkv.data_ptr<float>() : nullptr;
      float* a_data = own_loops ? a.data_ptr<float>() : nullptr;
      at::parallel_for(0, b, 1, [&](std::int64_t begin, std::int64_t end) {
        c10::InferenceMode inference;  // thread-local: the workers' own
        std::vector<float> scratch;
        for (std::int64_t task = begin; task < end; ++task) {
          const std::int64_t i = zigzag[task], len = lengths[i];
          if (own_loops) {
            attend(qkv_data + offsets[i] * 3 * h, len, heads, h / heads, a_data + offsets[i] * h,
                   scratch);
            continue;
          }
          // (len, 3h) -> (3, 1, heads, len, d): views only, as for a batch of one.
          const at::Tensor s = qkv.slice(0, offsets[i], offsets[i + 1])
                                   .view({1, len, 3, heads, h / heads})
                                   .permute({2, 0, 3, 1, 4});
          const at::Tensor o = at::scaled_dot_product_attention(s[0], s[1], s[2]);
          a.slice(0, offsets[i], offsets[i + 1])
              .view({len, heads, h / heads})
              .copy_(o[0].transpose(0, 1));
        }
      });
    }
    {
      RECORD_USER_SCOPE("semrec::attention_output_dense");
      x = L.out(a, Epilogue::none, &x);
    }
    {
      RECORD_USER_SCOPE("semrec::layernorm");
      x = at::layer_norm(x, {h}, L.ln1_w, L.ln1_b, eps);
    }
    if (ffn_peaks == nullptr && L.inter.is_int8() && L.down.is_int8()) {
      // int8 through: the intermediate goes from the first layer to the second as the second's
      // uint8 codes (a quarter of its float32 bytes; 44 MB of floats for 32 long texts).
      {
        RECORD_USER_SCOPE("semrec::ffn_dense_gelu");
        L.inter.quantized_for(L.down, x, Epilogue::gelu, ffn_codes);  // exact erf GELU
      }
      RECORD_USER_SCOPE("semrec::ffn_output_dense");
      x = L.down(ffn_codes, &x, nullptr);
    } else {
      {
        RECORD_USER_SCOPE("semrec::ffn_dense_gelu");
        f = L.inter(x, Epilogue::gelu, nullptr, &ffn_memory);  // exact erf GELU
      }
      if (ffn_peaks != nullptr) ffn_peaks->push_back(f.abs().amax(0));
      RECORD_USER_SCOPE("semrec::ffn_output_dense");
      if (f.scalar_type() == at::kBFloat16) {
        // Text by text, a text per task: oneDNN's bf16 matmul over the 1,536 inputs picks its
        // blocking by the row count (an AMX CPU, session 21: rows one bf16 step apart from 33
        // rows up), so one call for the batch would make a text's vector depend on the texts
        // around it. Per text, a text's rows meet the same call alone and in any batch (the
        // same rows on any thread count; the other layers, over 384 inputs, gave the same rows
        // for any row count).
        at::Tensor y = at::empty_like(x);
        at::parallel_for(0, b, 1, [&](std::int64_t begin, std::int64_t end) {
          c10::InferenceMode inference;  // thread-local: the workers' own
          for (std::int64_t task = begin; task < end; ++task) {
            const std::int64_t i = zigzag[task];
            const at::Tensor residual = x.slice(0, offsets[i], offsets[i + 1]);
            y.slice(0, offsets[i], offsets[i + 1])
                .copy_(L.down(f.slice(0, offsets[i], offsets[i + 1]), Epilogue::none, &residual));
          }
        });
        x = y;
      } else {
        x = L.down(f, Epilogue::none, &x);
      }
    }
    {
      RECORD_USER_SCOPE("semrec::layernorm");
      x = at::layer_norm(x, {h}, L.ln2_w, L.ln2_b, eps);
    }
  }
  RECORD_USER_SCOPE("semrec::pooling");
  x = x.to(at::kFloat).contiguous();
  at::Tensor pooled = at::empty({b, h}, x.options());
  const float* xp = x.data_ptr<float>();
  float* out = pooled.data_ptr<float>();
  at::parallel_for(0, b, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      float* o = out + i * h;
      if (!cfg.mean_pooling) {  // the [CLS] state
        std::copy(xp + offsets[i] * h, xp + (offsets[i] + 1) * h, o);
        continue;
      }
      std::fill(o, o + h, 0.0f);
      for (std::int64_t t = offsets[i]; t < offsets[i + 1]; ++t) {
        const float* row = xp + t * h;
#pragma omp simd
        for (std::int64_t j = 0; j < h; ++j) o[j] += row[j];
      }
      const float inv = 1.0f / static_cast<float>(lengths[i]);
#pragma omp simd
      for (std::int64_t j = 0; j < h; ++j) o[j] *= inv;
    }
  });
  return pooled;
}

void BertEncoder::encode(const std::vector<std::vector<std::int32_t>>& ids, std::int64_t batch_size,
                         bool normalize, float* out, const StopCheck& stop) const {
  const auto n = static_cast<std::int64_t>(ids.size());
  const std::int64_t h = impl_->cfg.hidden;
  for (const auto& s : ids) {
    if (s.empty() || static_cast<std::int64_t>(s.size()) > impl_->cfg.max_positions) {
      throw std::invalid_argument("token sequence length out of range");
    }
    for (auto t : s) {
      if (t < 0 || t >= impl_->cfg.vocab_size) throw std::invalid_argument("token id out of range");
    }
  }
  // Longest first: each batch holds texts of similar lengths (no padding, so the vectors do
  // not depend on how the texts are grouped).
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return ids[a].size() > ids[b].size(); });
  auto run_batch = [&](std::int64_t start, std::int64_t end, const StopCheck& check) {
    const std::int64_t b = end - start;
    std::vector<std::int64_t> lengths(b);
    std::int64_t tokens = 0;
    for (std::int64_t r = 0; r < b; ++r) {
      lengths[r] = static_cast<std::int64_t>(ids[order[start + r]].size());
      tokens += lengths[r];
    }
    at::Tensor batch = at::empty({tokens}, at::kLong);
    auto* bp = batch.data_ptr<std::int64_t>();
    for (std::int64_t r = 0; r < b; ++r) {
      const auto& s = ids[order[start + r]];
      bp = std::copy(s.begin(), s.end(), bp);
    }
    if (check && check()) throw Interrupted();
    at::Tensor pooled = impl_->forward(batch, lengths, check);
    if (normalize) pooled = l2_normalize(pooled);
    pooled = pooled.contiguous();
    const float* pp = pooled.data_ptr<float>();
    for (std::int64_t r = 0; r < b; ++r) {
      std::copy(pp + r * h, pp + (r + 1) * h, out + order[start + r] * h);
    }
  };
  c10::InferenceMode inference;  // no autograd bookkeeping
  // Enough texts for every thread to run whole batches of its own: each thread takes the next
  // batch (longest first) through the full forward pass, on its own, so the threads meet no
  // barrier between the ~40 steps of a batch (sharing each step, they waited for each other
  // and woke each other ~40 times a batch). The batches are at most batch_size texts and at
  // least kMinThreadBatch, small enough for ~kBatchesPerThread each (the last ones, the
  // shortest, even out the threads' loads).
  // A text's vector is the same either way (no padding; every kernel's rows are independent of
  // the other rows and of the thread count).
  const int threads = std::max(1, at::get_num_threads());
  const std::int64_t per_thread_batch =
      std::min(batch_size, (n + kBatchesPerThread * threads - 1) / (kBatchesPerThread * threads));
  if (threads > 1 && per_thread_batch >= kMinThreadBatch && !at::in_parallel_region()) {
    const std::int64_t batches = (n + per_thread_batch - 1) / per_thread_batch;
    // Only the calling thread (OpenMP thread 0) may consult stop; the others stop between
    // batches once it has (parallel_tasks).
    const StopCheck check = [&stop]() { return stop && omp_get_thread_num() == 0 && stop(); };
    parallel_tasks(batches, threads, stop, [&](std::int64_t k) {
      c10::InferenceMode worker_inference;  // thread-local: the workers' own
      run_batch(k * per_thread_batch, std::min(n, (k + 1) * per_thread_batch), check);
    });
    return;
  }
  for (std::int64_t start = 0; start < n; start += batch_size) {
    run_batch(start, std::min(n, start + batch_size), stop);
  }
}

}  // namespace semrec::text
