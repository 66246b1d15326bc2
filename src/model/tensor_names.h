#pragma once
// The nine tensors of a Llama layer: how Hugging Face and GGUF name them and their shapes from the
// config, in checkpoint order. Every loader, writer and the random-model maker reads this one table.
#include <array>
#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/weights.h"

namespace camelid {

struct LayerTensorSpec {
  const char* hf;                  // after "model.layers.N."
  const char* gguf;                // after "blk.N."
  Tensor LayerWeights::*member;
  bool vector;                     // a norm: [cols], kept in f32
  int64_t (*rows)(const ModelConfig&);
  int64_t (*cols)(const ModelConfig&);
  int rope_heads;                  // q/k: rows rotated in heads (0: not rotated, 1: query heads, 2: key/value heads)
};

namespace tensor_dims {
inline int64_t dim(const ModelConfig& c) { return c.dim; }
inline int64_t q(const ModelConfig& c) { return c.q_dim(); }
inline int64_t kv(const ModelConfig& c) { return c.kv_dim(); }
inline int64_t hidden(const ModelConfig& c) { return c.hidden_dim; }
inline int64_t none(const ModelConfig&) { return 1; }
}  // namespace tensor_dims

inline constexpr std::array<LayerTensorSpec, 9> kLayerTensors{{
    {"input_layernorm.weight", "attn_norm.weight", &LayerWeights::attn_norm, true, tensor_dims::none, tensor_dims::dim, 0},
    {"self_attn.q_proj.weight", "attn_q.weight", &LayerWeights::wq, false, tensor_dims::q, tensor_dims::dim, 1},
    {"self_attn.k_proj.weight", "attn_k.weight", &LayerWeights::wk, false, tensor_dims::kv, tensor_dims::dim, 2},
    {"self_attn.v_proj.weight", "attn_v.weight", &LayerWeights::wv, false, tensor_dims::kv, tensor_dims::dim, 0},
    {"self_attn.o_proj.weight", "attn_output.weight", &LayerWeights::wo, false, tensor_dims::dim, tensor_dims::q, 0},
    {"post_attention_layernorm.weight", "ffn_norm.weight", &LayerWeights::ffn_norm, true, tensor_dims::none, tensor_dims::dim, 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", &LayerWeights::w_gate, false, tensor_dims::hidden, tensor_dims::dim, 0},
    {"mlp.up_proj.weight", "ffn_up.weight", &LayerWeights::w_up, false, tensor_dims::hidden, tensor_dims::dim, 0},
    {"mlp.down_proj.weight", "ffn_down.weight", &LayerWeights::w_down, false, tensor_dims::dim, tensor_dims::hidden, 0},
}};

inline std::string hf_layer_prefix(int l) { return "model.layers." + std::to_string(l) + "."; }
inline std::string gguf_layer_prefix(int l) { return "blk." + std::to_string(l) + "."; }

// Reads one layer from a loader's tensor source (anything with get(name, rows, cols) and
// get_f32_vector(name, n)), by the names of one format (&LayerTensorSpec::hf or ::gguf).
template <class Source>
LayerWeights read_layer(Source& src, const std::string& prefix, const char* LayerTensorSpec::*name,
                        const ModelConfig& c) {
  LayerWeights L;
  for (const LayerTensorSpec& t : kLayerTensors)
    L.*t.member = t.vector ? src.get_f32_vector(prefix + t.*name, t.cols(c))
                           : src.get(prefix + t.*name, t.rows(c), t.cols(c));
  return L;
}

}  // namespace camelid
