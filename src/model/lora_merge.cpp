#include "model/lora_merge.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "model/lora_io.h"
#include "model/safetensors.h"
#include "model/tensor_names.h"

namespace camelid {

ParamSet merge_lora(const ModelWeights& base, const LoraAdapter* adapter, float scale) {
  const ModelConfig& c = base.config;
  if (!c.rope_freq_factors.empty() && c.rope_scaling.type == RopeScaling::Type::None)
    fail(base.source, ": its RoPE frequency factors (rope_freqs) have no rope_scaling that config.json could hold");
  if (adapter && adapter->index.size() != size_t(c.n_layers))
    fail("merge: the adapter has ", adapter->index.size(), " layers, the base model ", c.n_layers);
  ParamSet ps = params_from_weights(base);
  for (Param& p : ps.params) p.grad.clear(), p.grad.shrink_to_fit(), p.trainable = false;
  if (adapter) lora_merge_into(ps, *adapter, scale);
  if (c.rope_interleaved) {  // back to Hugging Face's rotate-half rows
    for (int l = 0; l < c.n_layers; ++l)
      for (const auto& [name, heads] : {std::pair{"self_attn.q_proj.weight", c.n_heads}, std::pair{"self_attn.k_proj.weight", c.n_kv_heads}}) {
        Param& p = ps.at(hf_layer_prefix(l) + name);
        std::vector<float> hf(p.value.size());
        for (int64_t r = 0; r < p.rows; ++r)
          std::memcpy(&hf[size_t(rope_row_in_hf(r, p.rows, heads) * p.cols)], &p.value[size_t(r * p.cols)], size_t(p.cols) * 4);
        p.value = std::move(hf);
      }
    ps.config.rope_interleaved = false;
  }
  return ps;
}

void write_hf_checkpoint(const std::string& dir, const ParamSet& ps, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    fail("write_hf_checkpoint: ", dtype_name(dtype), " is not f32, f16 or bf16");
  if (ps.config.rope_interleaved) fail("write_hf_checkpoint: q/k rows are in interleaved RoPE order");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create directory: ", ec.message());
  std::vector<SafetensorsOut> ts;
  for (const Param& p : ps.params) {
    SafetensorsOut t{p.name, dtype, p.rows == 1 && p.name.find("norm") != std::string::npos
                                        ? std::vector<int64_t>{p.cols} : std::vector<int64_t>{p.rows, p.cols},
                     std::vector<uint8_t>(p.numel() * dtype_size(dtype))};
    for (size_t i = 0; i < p.value.size(); ++i) {
      if (dtype == DType::F32) {
        std::memcpy(&t.bytes[i * 4], &p.value[i], 4);
      } else {
        const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(p.value[i]) : f32_to_f16(p.value[i]);
        std::memcpy(&t.bytes[i * 2], &h, 2);
      }
    }
    ts.push_back(std::move(t));
  }
  write_safetensors(dir + "/model.safetensors", ts);
  nlohmann::json cfg = ps.config.to_json();
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg["model_type"] = "llama";
  cfg["hidden_act"] = "silu";
  cfg["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::BF16 ? "bfloat16" : "float16";
  std::ofstream f(dir + "/config.json", std::ios::binary);
  f << dump_json(cfg, 2) << "\n";
  if (!f.flush()) fail(dir, "/config.json: cannot write");
}

}  // namespace camelid
