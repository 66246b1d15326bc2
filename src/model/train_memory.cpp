#include "model/train_memory.h"

#include <algorithm>

namespace camelid {

namespace {

size_t params_of(const ModelConfig& c) {
  const size_t D = size_t(c.dim), L = size_t(c.n_layers);
  const size_t layer = 2 * D + D * size_t(c.q_dim()) * 2 + D * size_t(c.kv_dim()) * 2 + 3 * D * size_t(c.hidden_dim);
  return size_t(c.vocab_size) * D * (c.tied_embeddings ? 1 : 2) + L * layer + D;
}

// LlamaTrain's activations for B x T tokens (f32): per layer x, xn, q, k, v, att, x2, xn2, gate,
// up, two 1/rms rows and the attention probabilities; the final hidden states and logits; the
// backward's gradient buffers; and matmul_dx's f32 copy of the widest weight (two when it has to
// be widened from another dtype first). lora_h: floats per token of the adapters' A·x.
size_t activation_bytes(const ModelConfig& c, int B, int T, size_t lora_h, bool widen) {
  const size_t N = size_t(B) * size_t(T), D = size_t(c.dim), Q = size_t(c.q_dim()), KV = size_t(c.kv_dim()),
               H = size_t(c.hidden_dim), V = size_t(c.vocab_size);
  const size_t per_layer = N * (4 * D + 2 * Q + 2 * KV + 2 * H + 2 + lora_h) + size_t(B) * size_t(c.n_heads) * size_t(T) * size_t(T);
  const size_t head = N * (2 * D + 1 + V);
  const size_t grads = N * (3 * D + 2 * Q + 2 * KV + 2 * H) + N * H;  // + the swiglu output recomputed
  const size_t widest = std::max({V * D, H * D, Q * D});
  return 4 * (size_t(c.n_layers) * per_layer + head + grads + widest * (widen ? 2 : 1));
}

}  // namespace

TrainMemory full_training_memory(const ModelConfig& c, int B, int T) {
  TrainMemory m;
  m.trainable = params_of(c);
  m.weights = m.grads = 4 * m.trainable;
  m.adam = 8 * m.trainable;
  m.activations = activation_bytes(c, B, T, 0, false);
  return m;
}

TrainMemory lora_training_memory(const ModelWeights& base, const LoraConfig& lc, int B, int T) {
  const ModelConfig& c = base.config;
  TrainMemory m;
  size_t h = 0;
  for (LoraTarget t : lc.targets) {
    const LoraTargetSpec& s = lora_target(t);
    m.trainable += size_t(c.n_layers) * size_t(lc.r) * size_t(s.in(c) + s.out(c));
    h += size_t(lc.r);
  }
  m.weights = base.weight_bytes() + 4 * m.trainable;
  m.grads = 4 * m.trainable;
  m.adam = 8 * m.trainable;
  m.activations = activation_bytes(c, B, T, h, base.main_dtype() != DType::F32);
  return m;
}

}  // namespace camelid
