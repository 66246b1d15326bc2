#pragma once
// LoRA adapters in Hugging Face PEFT's layout, so PEFT loads what camelid trains and camelid
// runs what PEFT trains: DIR/adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout,
// target_modules, ...) and DIR/adapter_model.safetensors (lora_A [r, in] and lora_B [out, r] of
// each adapted module, named base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight ...;
// written in f32, read from F32, F16 or BF16).
// Adapter files are hostile until checked against the base: unknown keys or modules, features
// camelid does not run (DoRA, bias, fan_in_fan_out, rank/alpha patterns, layers_to_transform,
// modules_to_save, regex target_modules), ranks out of range, shapes that are not the base's, a
// missing or extra tensor: each an Error naming the file and the field or tensor.
// Over a base whose q/k rows are in Meta's interleaved RoPE order (GGUF), lora_B's q/k rows are
// permuted on load and back on save, so the files always hold Hugging Face's row order.
#include <cstdint>
#include <memory>
#include <string>

#include "model/lora.h"

namespace camelid {

// adapter_config.json text -> LoraConfig (validated); `source` names the file in errors.
LoraConfig parse_lora_config(const std::string& json_text, const std::string& source);
// The adapter_config.json PEFT writes for this config (sorted keys, as PEFT's save_pretrained).
std::string lora_config_json(const LoraConfig& c);

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (creating DIR); `base` is the
// model the adapter was trained on (its RoPE row layout).
void save_lora(const std::string& dir, const LoraAdapter& a, const ModelConfig& base);
// Reads an adapter directory for a base with config `base`. The result has no gradients.
std::shared_ptr<LoraAdapter> load_lora(const std::string& dir, const ModelConfig& base);
// The same from memory (fuzzing, tests): config text and safetensors bytes; `dir` names them.
std::shared_ptr<LoraAdapter> load_lora_memory(const std::string& config_json, const uint8_t* data, size_t size,
                                              const ModelConfig& base, const std::string& dir);

// Row r of a q/k matrix (rows = heads × head_dim) in Meta's interleaved RoPE order holds Hugging
// Face's row rope_row_in_hf(r, ...) (convert_hf_to_gguf.py's permute).
int64_t rope_row_in_hf(int64_t r, int64_t rows, int heads);

}  // namespace camelid
