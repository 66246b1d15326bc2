#pragma once
// What training a Llama with LlamaTrain holds in memory, by part: for full fine-tuning (f32
// weights, f32 gradients, AdamW's two f32 moments) and for LoRA/QLoRA (the frozen base as stored,
// e.g. Q4_K_M, plus f32 adapters with their gradients and moments), and the activations kept for
// one batch of B rows of T tokens. Counted from LlamaTrain's buffers, not measured.
#include <cstddef>

#include "model/lora.h"
#include "model/weights.h"

namespace camelid {

struct TrainMemory {
  size_t weights = 0;      // what the forward reads (base as stored + adapters)
  size_t grads = 0;        // f32 gradients of the trainable parameters
  size_t adam = 0;         // AdamW's m and v (f32)
  size_t activations = 0;  // kept by the forward for the backward, plus the backward's buffers
  size_t trainable = 0;    // parameters
  size_t total() const { return weights + grads + adam + activations; }
};

// Full fine-tuning of a model of config c (every parameter trainable, f32).
TrainMemory full_training_memory(const ModelConfig& c, int B, int T);
// LoRA over `base` (its weights as loaded: quantized, f16, ...) with adapter config lc.
TrainMemory lora_training_memory(const ModelWeights& base, const LoraConfig& lc, int B, int T);

}  // namespace camelid
