// BERT-family sentence encoder on LibTorch. The interface uses plain types (pimpl), so binding
// code never includes torch headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "semrec/parallel.hpp"
#include "semrec/text/safetensors.hpp"

namespace semrec::text {

struct BertConfig {
  std::int64_t vocab_size = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0;
  std::int64_t max_positions = 0, type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  bool mean_pooling = true;  // else the [CLS] state
  // "fp32"; "bf16": weights and activations in bfloat16 (pooling in float32); "int8": dense
  // layers with int8 weights and dynamically quantised activations, the rest in float32.
  std::string precision = "fp32";
  bool onednn = true;         // prepacked oneDNN GEMMs with fused epilogues where available
  bool reduce_range = false;  // int8: 7-bit weights or activations (no VNNI: 16-bit sums)
};

// FBGEMM's instruction set for the int8 kernels ("avx2", "avx512_vnni", ...; "none" without it).
std::string int8_kernel_isa();

class BertEncoder {
 public:
  // Loads the weights from a safetensors file. `prefix` is stripped from tensor names ("bert."
  // or ""); the entries are validated by the caller.
  BertEncoder(const BertConfig& config, const std::string& path, std::uint64_t data_start,
              const std::vector<TensorEntry>& entries, const std::string& prefix);
  ~BertEncoder();
  BertEncoder(const BertEncoder&) = delete;
  BertEncoder& operator=(const BertEncoder&) = delete;

  // Encodes token sequences ([CLS] ... [SEP]) into out (n x hidden, float32), batch_size
  // sequences at a time, unpadded: a text's vector does not depend on its batch. stop is polled
  // between batches and layers (throws Interrupted).
  // Runs on the calling thread's LibTorch intra-op thread count.
  void encode(const std::vector<std::vector<std::int32_t>>& ids, std::int64_t batch_size,
              bool normalize, float* out, const StopCheck& stop = {}) const;

  std::int64_t dim() const;

  // The kernels in use, e.g. "bf16 oneDNN" or "int8 FBGEMM avx512_vnni".
  std::string kernels() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semrec::text
