#pragma once
// LoRA (low-rank adaptation, as Hugging Face PEFT defines it) on the linear layers of a Llama:
//   y = W·x + s · B·(A·dropout(x)),   A [r, in], B [out, r],   s = lora_alpha / r (× --lora-scale)
// The seam is linear(): both forwards (Llama for inference, LlamaTrain for training) compute
// every q/k/v/o/gate/up/down projection through it, so an adapter attached to ModelWeights::lora
// changes inference and training alike, over a base in any dtype (f32, f16, bf16, GGUF
// quantized: QLoRA). Adapter weights are f32, held in a ParamSet under PEFT's tensor names
// (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight ...), so an optimizer, the
// PEFT files (model/lora_io.h) and merge all see plain parameters.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "model/params.h"
#include "model/weights.h"

namespace camelid {

enum class LoraTarget : int { Q, K, V, O, Gate, Up, Down };
inline constexpr int kLoraTargetCount = 7;

struct LoraTargetSpec {
  LoraTarget target;
  const char* short_name;  // "q" (camelid's flags)
  const char* peft;        // "q_proj" (PEFT's target_modules)
  const char* module;      // "self_attn.q_proj" (after model.layers.N.)
  Tensor LayerWeights::*member;
  int64_t (*out)(const ModelConfig&);
  int64_t (*in)(const ModelConfig&);
  bool rope_rows;          // q/k: output rows follow the base's RoPE pair layout (see lora_io)
};
// In PEFT's module order within a layer (that of LlamaDecoderLayer.named_modules).
const std::array<LoraTargetSpec, kLoraTargetCount>& lora_targets();
inline const LoraTargetSpec& lora_target(LoraTarget t) { return lora_targets()[size_t(t)]; }
// "q", "q_proj" (or "self_attn.q_proj") -> Q; throws Error listing the names.
LoraTarget lora_target_from_name(const std::string& name);

struct LoraConfig {
  int r = 8;
  double alpha = 16;
  double dropout = 0;                 // on the adapter's input, training only
  std::vector<LoraTarget> targets;    // unique, in lora_targets() order
  bool use_rslora = false;            // PEFT's rank-stabilised scale alpha / sqrt(r)
  std::string base_model;             // base_model_name_or_path
  static constexpr int kMaxRank = 1 << 16;

  double scale() const;               // alpha / r (or alpha / sqrt(r))
  bool has(LoraTarget t) const;
  // Throws Error naming `source` for r outside 1..kMaxRank, a non-finite alpha, dropout outside
  // [0, 1), no or repeated targets.
  void validate(const std::string& source) const;
};

struct LoraAdapter {
  LoraConfig config;
  ParamSet params;  // for each layer, each target: lora_A [r, in] then lora_B [out, r]; config = the base's
  // index[layer][target]: position of lora_A in params (lora_B follows), -1 where none.
  std::vector<std::array<int, kLoraTargetCount>> index;

  const Param* A(int layer, LoraTarget t) const;
  const Param* B(int layer, LoraTarget t) const { const Param* a = A(layer, t); return a ? a + 1 : nullptr; }
  Param* A(int layer, LoraTarget t) { return const_cast<Param*>(static_cast<const LoraAdapter*>(this)->A(layer, t)); }
  Param* B(int layer, LoraTarget t) { Param* a = A(layer, t); return a ? a + 1 : nullptr; }
};

// PEFT's name of a module's lora_A / lora_B weight.
std::string lora_param_name(int layer, LoraTarget t, bool b);

// An adapter on every layer's targets of a base with config `base` (validated): lora_A as PEFT
// initialises it (kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))) from a seeded
// generator, lora_B zero; all trainable (grads sized). Nothing changes the base's output until B moves.
LoraAdapter lora_init(const LoraConfig& cfg, const ModelConfig& base, uint64_t seed);

// Training-time dropout of the adapter input: element i of (layer, target)'s input in forward
// number `step` is kept with probability 1 - p and scaled by 1/(1-p). The mask is a hash of
// (seed, step, layer, target, i), so the backward recomputes it rather than keeping it.
struct LoraDropout {
  float p = 0;
  uint64_t seed = 0, step = 0;
};

// One projection of linear(): which weight of the layer, where its output goes, and (training)
// where to keep H = A·dropout(x) [T, r] for the backward.
struct LinearOut {
  LoraTarget target;
  float* y;
  std::vector<float>* keep_h = nullptr;
};

// The seam. For each out: y = X·W^T with W the layer's weight for the target (kernels::matmul,
// any dtype; outs sharing X go through one parallel region), then, where w.lora adapts the
// module, y += s·(A·dropout(X))·B^T with s = w.lora's scale × w.lora_scale. X is [T, in].
// dropout: given by the training forward only (its p may be 0): then the base products go
// through ops::matmul_train (the gemm path for many rows) and the adapter input is dropped.
void linear(const ModelWeights& w, int layer, const float* X, int T, std::initializer_list<LinearOut> outs,
            const LoraDropout* dropout = nullptr);

// The adapter's share of linear()'s backward for one module (w.lora must adapt it, else no-op):
// dX += s·((dY·B)·A) ⊙ mask, and, when `grads` is given (the adapter w.lora points to), its
// lora_A/lora_B grads += their gradients. X is the forward's input, H what it kept.
void lora_backward(const ModelWeights& w, LoraAdapter* grads, int layer, LoraTarget t, const float* dY,
                   const float* X, const float* H, int T, float* dX, const LoraDropout* dropout);

// W += s·B·A for every adapted module of an f32 parameter set of the same shape (merge).
void lora_merge_into(ParamSet& base, const LoraAdapter& adapter, float scale);

}  // namespace camelid
