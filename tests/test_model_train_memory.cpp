// Memory of training, per base parameter: full fine-tuning (f32 weights + grads + AdamW moments)
// against LoRA over a Q4_K_M base (QLoRA), for the qmix fixture and for Llama 2 7B's shape.
// Prints the numbers (the report quotes them) and checks their parts.
#include <gtest/gtest.h>

#include <cstdio>

#include "fixtures.h"
#include "model/tensor_names.h"
#include "model/train_memory.h"

namespace camelid {
namespace {

LoraConfig all_linear(int r) {
  LoraConfig lc;
  lc.r = r, lc.alpha = 2 * r;
  for (const LoraTargetSpec& t : lora_targets()) lc.targets.push_back(t.target);
  return lc;
}

void report(const char* name, const ModelWeights& w, int B, int T) {
  const size_t n = w.parameters();
  const TrainMemory full = full_training_memory(w.config, B, T), lora = lora_training_memory(w, all_linear(16), B, T);
  auto line = [&](const char* what, const TrainMemory& m) {
    std::printf("%-28s %-7s B=%d T=%d: weights %.3f + grads %.3f + adam %.3f + activations %.3f = %.3f bytes/param "
                "(%.1f MiB; trainable %zu)\n",
                name, what, B, T, double(m.weights) / n, double(m.grads) / n, double(m.adam) / n,
                double(m.activations) / n, double(m.total()) / n, double(m.total()) / (1 << 20), m.trainable);
  };
  line("full", full);
  line("QLoRA r16", lora);
  EXPECT_EQ(full.trainable, n);
  EXPECT_EQ(full.weights + full.grads + full.adam, 16 * n);
  EXPECT_EQ(lora.grads, 4 * lora.trainable);
  EXPECT_EQ(lora.adam, 8 * lora.trainable);
  EXPECT_LT(lora.weights + lora.grads + lora.adam, (full.weights + full.grads + full.adam) / 8);
}

TEST(TrainMemory, FullFineTuningVersusQloraOverQ4KM) {
  auto w = load_model(test::fixture("gguf/qmix-q4_k_m.gguf"));
  report("qmix (Q4_K_M fixture)", *w, 4, 256);

  // Llama 2 7B's shape with Q4_K_M's types as llama-quantize gives them (Q4_K; Q6_K for the
  // classifier and for attn_v / ffn_down of about half the layers): sizes only, no data.
  ModelWeights s;
  ModelConfig& c = s.config;
  c.vocab_size = 32000, c.dim = 4096, c.hidden_dim = 11008, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 32;
  c.head_dim = 128, c.max_seq_len = 4096;
  auto t = [](DType d, int64_t r, int64_t k) { return Tensor{nullptr, d, r, k}; };
  s.embed = t(DType::Q4_K, c.vocab_size, c.dim);
  s.lm_head = t(DType::Q6_K, c.vocab_size, c.dim);
  static const char embed_tag = 0, head_tag = 0;  // distinct addresses: an untied classifier
  s.embed.data = &embed_tag, s.lm_head.data = &head_tag;
  s.final_norm = t(DType::F32, 1, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights L;
    for (const LayerTensorSpec& spec : kLayerTensors) L.*spec.member = t(spec.vector ? DType::F32 : DType::Q4_K, spec.rows(c), spec.cols(c));
    if (l % 2 == 0) L.wv.dtype = L.w_down.dtype = DType::Q6_K;
    s.layers.push_back(L);
  }
  report("Llama-2-7B shape (Q4_K_M)", s, 1, 512);
}

}  // namespace
}  // namespace camelid
