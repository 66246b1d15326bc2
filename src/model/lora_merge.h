#pragma once
// `camelid merge`: a base model with a LoRA adapter folded in (W += s·B·A), written as a Hugging
// Face checkpoint directory that any Llama loader reads without the adapter.
#include <string>

#include "core/dtype.h"
#include "model/lora.h"

namespace camelid {

// The base's parameters in f32 (f16/bf16 widened, quantized types dequantized) plus the adapter's
// update scaled by `scale` (× its alpha / r), in Hugging Face's layout: the q/k rows of a base in
// Meta's interleaved RoPE order (GGUF) are put back in rotate-half order (config.rope_interleaved
// false). Throws Error for a base whose RoPE scaling config.json cannot express (GGUF rope_freqs
// without rope_scaling). A null adapter gives the base alone (a format/dtype conversion).
ParamSet merge_lora(const ModelWeights& base, const LoraAdapter* adapter, float scale);

// DIR/config.json (LlamaForCausalLM) and DIR/model.safetensors with every tensor in `dtype` (F32,
// F16 or BF16), Hugging Face names and order. ps must be in Hugging Face's layout.
void write_hf_checkpoint(const std::string& dir, const ParamSet& ps, DType dtype);

}  // namespace camelid
