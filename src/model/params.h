#pragma once
// The parameter registry of a Llama for training: every tensor as f32 values (+ gradient when
// trainable) under its Hugging Face name, in Hugging Face order (embed_tokens, layers 0.., norm,
// lm_head when untied). Training, LoRA, checkpoints and name mapping all go through it; the model
// it describes is run by viewing it as ModelWeights (weights_view), so inference and training use
// one Llama definition.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace camelid {

struct Param {
  std::string name;            // "model.layers.0.self_attn.q_proj.weight"
  int64_t rows = 1, cols = 0;  // a vector (norm) has rows == 1
  std::vector<float> value;
  std::vector<float> grad;     // value.size() when trainable, else empty
  bool trainable = true;
  bool decay = false;          // AdamW weight decay applies (2-D matrices; never norms)
  size_t numel() const { return size_t(rows) * size_t(cols); }
};

struct ParamSet {
  ModelConfig config;
  std::vector<Param> params;

  Param* find(const std::string& name);
  const Param* find(const std::string& name) const;
  Param& at(const std::string& name);  // throws Error naming the parameter
  void zero_grad();
  size_t numel(bool trainable_only = false) const;
};

// From a loaded model of any format (f16/bf16/quantized weights widened to f32). All trainable.
ParamSet params_from_weights(const ModelWeights& w);
// A new model: matrices ~ N(0, init_std) (transformers' initializer_range, 0.02), norms 1, from
// a seeded generator (same seed, same model on every host).
ParamSet params_init(const ModelConfig& c, uint64_t seed, float init_std = 0.02f);
// ModelWeights whose f32 views point into ps's values (no copy), for Llama inference, training's
// forward and export. ps must outlive the result and its values must not be resized.
std::shared_ptr<ModelWeights> weights_view(const ParamSet& ps);

}  // namespace camelid
