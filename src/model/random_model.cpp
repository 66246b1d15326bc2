#include "model/random_model.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/safetensors.h"
#include "model/tensor_names.h"

namespace camelid {

RandomModelSpec random_model_preset(const std::string& name) {
  RandomModelSpec s;
  ModelConfig& c = s.config;
  c.max_seq_len = 4096;
  c.bos_id = 1;
  c.eos_ids = {2};
  if (name == "bench-450m") {
    c.vocab_size = 32000, c.dim = 1536, c.hidden_dim = 4096, c.n_layers = 14, c.n_heads = 24,
    c.n_kv_heads = 8;
  } else if (name == "tiny") {
    c.vocab_size = 512, c.dim = 64, c.hidden_dim = 160, c.n_layers = 2, c.n_heads = 4,
    c.n_kv_heads = 2;
  } else if (name == "small") {
    c.vocab_size = 4096, c.dim = 256, c.hidden_dim = 688, c.n_layers = 4, c.n_heads = 8,
    c.n_kv_heads = 4;
  } else {
    fail("unknown preset '", name, "' (expected bench-450m, small or tiny)");
  }
  c.head_dim = c.dim / c.n_heads;
  return s;
}

namespace {

struct Rng {  // splitmix64: fast and identical everywhere
  uint64_t s;
  float uniform() {  // [-1, 1)
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return float(z >> 40) * 0x1.0p-23f - 1.f;
  }
};

SafetensorsOut make(const std::string& name, DType dt, std::vector<int64_t> shape, Rng& rng,
                    float scale, float offset = 0.f) {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  SafetensorsOut t{name, dt, shape, std::vector<uint8_t>(n * dtype_size(dt))};
  for (size_t i = 0; i < n; ++i) {
    const float v = offset + scale * rng.uniform();
    if (dt == DType::F32) {
      std::memcpy(&t.bytes[i * 4], &v, 4);
    } else {
      uint16_t h = dt == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(&t.bytes[i * 2], &h, 2);
    }
  }
  return t;
}

}  // namespace

void write_random_config(const std::string& dir, const RandomModelSpec& spec) {
  const ModelConfig& c = spec.config;
  c.validate("random model spec");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create directory: ", ec.message());

  nlohmann::json cfg = c.to_json();
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg["model_type"] = "llama";
  cfg["hidden_act"] = "silu";
  cfg["torch_dtype"] = spec.dtype == DType::F32 ? "float32" : spec.dtype == DType::BF16 ? "bfloat16" : "float16";
  std::ofstream f(dir + "/config.json");
  if (!f) fail(dir, "/config.json: cannot create");
  f << cfg.dump(2) << "\n";
}

std::vector<SafetensorsOut> random_model_tensors(const RandomModelSpec& spec) {
  const ModelConfig& c = spec.config;
  Rng rng{spec.seed};
  const DType dt = spec.dtype;
  const float sd = std::sqrt(3.f / c.dim);
  std::vector<SafetensorsOut> ts;
  ts.push_back(make("model.embed_tokens.weight", dt, {c.vocab_size, c.dim}, rng, 1.f));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = hf_layer_prefix(l);
    for (const LayerTensorSpec& t : kLayerTensors) {
      const int64_t rows = t.rows(c), cols = t.cols(c);
      // Norms near 1; matrices uniform with variance 1/cols, so activations keep their scale.
      if (t.vector)
        ts.push_back(make(p + t.hf, dt, {cols}, rng, 0.1f, 1.f));
      else
        ts.push_back(make(p + t.hf, dt, {rows, cols}, rng, std::sqrt(3.f / float(cols))));
    }
  }
  ts.push_back(make("model.norm.weight", dt, {c.dim}, rng, 0.1f, 1.f));
  if (!c.tied_embeddings) ts.push_back(make("lm_head.weight", dt, {c.vocab_size, c.dim}, rng, sd * 4));
  return ts;
}

void write_random_model(const std::string& dir, const RandomModelSpec& spec) {
  write_random_config(dir, spec);
  write_safetensors(dir + "/model.safetensors", random_model_tensors(spec));
}

}  // namespace camelid
