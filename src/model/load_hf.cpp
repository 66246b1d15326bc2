// Hugging Face layout: config.json + model.safetensors, or shards listed in
// model.safetensors.index.json. Weights stay memory-mapped in their stored dtype.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace camelid {

namespace fs = std::filesystem;

namespace {

class TensorSource {
 public:
  TensorSource(const std::string& dir, ModelWeights& w, bool no_mmap) : dir_(dir), w_(w), no_mmap_(no_mmap) {
    const std::string index = dir + "/model.safetensors.index.json";
    if (fs::exists(index)) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_text_file(index));
      } catch (const nlohmann::json::exception& e) {
        fail(index, ": invalid JSON: ", e.what());
      }
      if (!j.contains("weight_map") || !j["weight_map"].is_object())
        fail(index, ": missing object field 'weight_map'");
      std::set<std::string> files;
      for (auto& [name, file] : j["weight_map"].items()) {
        if (!file.is_string()) fail(index, ": weight_map['", name, "'] is not a file name");
        std::string fname = file.get<std::string>();
        if (fname.find('/') != std::string::npos || fname.find("..") != std::string::npos)
          fail(index, ": weight_map['", name, "'] = '", fname, "' is not a file in the directory");
        files.insert(fname);
      }
      for (auto& f : files) add_file(dir + "/" + f);
    } else if (fs::exists(dir + "/model.safetensors")) {
      add_file(dir + "/model.safetensors");
    } else {
      fail(dir, ": no model.safetensors or model.safetensors.index.json found");
    }
  }

  bool has(const std::string& name) const { return entries_.count(name) != 0; }

  // The named tensor, checked against the shape the config implies.
  Tensor get(const std::string& name, int64_t rows, int64_t cols, bool vector = false) {
    auto it = entries_.find(name);
    if (it == entries_.end()) fail(dir_, ": tensor '", name, "' not found in the checkpoint");
    const auto& [e, file] = it->second;
    const std::string where = file + ": tensor '" + name + "'";
    Tensor t;
    try {
      t.dtype = dtype_from_name(e.dtype);
    } catch (const Error&) {
      fail(where, ": unsupported dtype '", e.dtype, "' (expected F32, F16 or BF16)");
    }
    std::vector<int64_t> want = vector ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols};
    if (e.shape != want) {
      std::string got, exp;
      for (auto d : e.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : want) exp += (exp.empty() ? "" : ", ") + std::to_string(d);
      fail(where, ": shape [", got, "] does not match the config (expected [", exp, "])");
    }
    t.data = e.data;
    t.rows = rows;
    t.cols = cols;
    return t;
  }

  // Norm weights are tiny and used every step in f32: widen once.
  Tensor get_f32_vector(const std::string& name, int64_t n) {
    Tensor t = get(name, 1, n, true);
    if (t.dtype == DType::F32 && reinterpret_cast<uintptr_t>(t.data) % 4 == 0) return t;
    std::vector<float> v(n);
    to_f32(t.dtype, t.data, v.data(), n);
    return w_.own(std::move(v), 1, n);
  }

 private:
  void add_file(const std::string& path) {
    auto map = std::make_unique<MappedFile>(path, no_mmap_);
    for (auto& [name, e] : parse_safetensors(*map)) {
      if (entries_.count(name)) fail(path, ": tensor '", name, "' appears in two files");
      entries_.emplace(name, std::make_pair(e, path));
    }
    w_.maps.push_back(std::move(map));
  }

  std::string dir_;
  ModelWeights& w_;
  bool no_mmap_;
  std::map<std::string, std::pair<SafetensorsEntry, std::string>> entries_;
};

}  // namespace

std::unique_ptr<ModelWeights> load_hf_dir(const std::string& dir, bool no_mmap) {
  auto w = std::make_unique<ModelWeights>();
  const std::string cfg_path = dir + "/config.json";
  if (!fs::exists(cfg_path)) fail(dir, ": no config.json (expected a Hugging Face model directory)");
  w->config = parse_hf_config(read_text_file(cfg_path), cfg_path);
  w->source = dir;
  w->format = "safetensors";
  const ModelConfig& c = w->config;

  TensorSource src(dir, *w, no_mmap);
  w->embed = src.get("model.embed_tokens.weight", c.vocab_size, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights L;
    L.attn_norm = src.get_f32_vector(p + "input_layernorm.weight", c.dim);
    L.wq = src.get(p + "self_attn.q_proj.weight", c.q_dim(), c.dim);
    L.wk = src.get(p + "self_attn.k_proj.weight", c.kv_dim(), c.dim);
    L.wv = src.get(p + "self_attn.v_proj.weight", c.kv_dim(), c.dim);
    L.wo = src.get(p + "self_attn.o_proj.weight", c.dim, c.q_dim());
    L.ffn_norm = src.get_f32_vector(p + "post_attention_layernorm.weight", c.dim);
    L.w_gate = src.get(p + "mlp.gate_proj.weight", c.hidden_dim, c.dim);
    L.w_up = src.get(p + "mlp.up_proj.weight", c.hidden_dim, c.dim);
    L.w_down = src.get(p + "mlp.down_proj.weight", c.dim, c.hidden_dim);
    w->layers.push_back(L);
  }
  w->final_norm = src.get_f32_vector("model.norm.weight", c.dim);
  if (c.tied_embeddings) {
    w->lm_head = w->embed;
  } else if (src.has("lm_head.weight")) {
    w->lm_head = src.get("lm_head.weight", c.vocab_size, c.dim);
  } else {
    fail(dir, ": tensor 'lm_head.weight' not found and tie_word_embeddings is false");
  }
  return w;
}

}  // namespace camelid
