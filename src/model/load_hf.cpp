// Hugging Face layout: config.json + model.safetensors, or shards listed in
// model.safetensors.index.json. Weights stay memory-mapped in their stored dtype. Every tensor of
// the checkpoint must be one the config implies (or a known harmless extra), in the shard the
// index names; every weight is checked for NaN/Inf (see finite_check.h).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "model/finite_check.h"
#include "model/safetensors.h"
#include "model/tensor_names.h"
#include "model/weights.h"

namespace camelid {

namespace fs = std::filesystem;

namespace {

// Real config.json files are a few KB and indexes of the largest checkpoints about 100 KB.
constexpr size_t kMaxConfigBytes = size_t(16) << 20;
constexpr size_t kMaxIndexBytes = size_t(64) << 20;

// A shard must be a plain file of the model directory: no path (a stranger's index must not
// make us open ../../anything or /dev/...), printable ASCII only (a NUL would cut the name short,
// control characters would reach the terminal in messages), and a .safetensors name.
bool plain_shard_name(const std::string& f) {
  for (unsigned char c : f)
    if (c < 0x20 || c > 0x7e || c == '/') return false;
  return f.size() > 12 && f.ends_with(".safetensors");
}

// model.safetensors.index.json: tensor name -> shard file name.
std::map<std::string, std::string> read_shard_index(const std::string& index) {
  const nlohmann::json j = parse_json(read_text_file(index, kMaxIndexBytes), index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(index, ": missing object field 'weight_map'");
  std::map<std::string, std::string> map;
  for (auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) fail(index, ": weight_map['", printable_name(name), "'] is not a file name");
    const std::string f = file.get<std::string>();
    if (!plain_shard_name(f))
      fail(index, ": weight_map['", printable_name(name), "'] = '", printable_name(f),
           "' is not a file in the directory (expected a name like model-00001-of-00002.safetensors)");
    map.emplace(name, f);
  }
  if (map.empty()) fail(index, ": weight_map lists no tensors");
  return map;
}

// "model.layers.12.mlp.up_proj.weight" -> 12; -1 when the name is not a layer's (or the
// number is not a plain decimal that fits).
long layer_of(const std::string& name) {
  static const std::string prefix = "model.layers.";
  if (!name.starts_with(prefix)) return -1;
  size_t i = prefix.size(), j = i;
  while (j < name.size() && j - i < 10 && name[j] >= '0' && name[j] <= '9') ++j;
  if (j == i || j >= name.size() || name[j] != '.') return -1;
  return std::stol(name.substr(i, j - i));
}

enum class Finite { Required, RowsMayFail };

class TensorSource {
 public:
  TensorSource(std::string dir, ModelWeights& w) : dir_(std::move(dir)), w_(w) {}

  // Adds the tensors of one parsed file; `file` names it in messages.
  void add(const std::string& file, const std::map<std::string, SafetensorsEntry>& entries) {
    for (auto& [name, e] : entries) {
      auto [it, fresh] = entries_.emplace(name, Source{e, file, false});
      if (!fresh)
        fail(file, ": tensor '", printable_name(name), "' also appears in ", it->second.file, " (a tensor must be in one file)");
    }
  }

  // Every tensor the index lists is in the shard it names, and every tensor of the shards is listed.
  void check_index(const std::string& index, const std::map<std::string, std::string>& map) {
    for (auto& [name, shard] : map) {
      auto it = entries_.find(name);
      if (it == entries_.end())
        fail(index, ": tensor '", printable_name(name), "' is listed in ", shard, ", which does not contain it");
      if (fs::path(it->second.file).filename().string() != shard)
        fail(index, ": tensor '", printable_name(name), "' is listed in ", shard, " but found in ", it->second.file);
    }
    for (auto& [name, src] : entries_)
      if (!map.count(name)) fail(src.file, ": tensor '", printable_name(name), "' is not listed in ", index);
  }

  bool has(const std::string& name) const { return entries_.count(name) != 0; }

  // The named tensor, checked against the shape the config implies and for NaN/Inf.
  Tensor get(const std::string& name, int64_t rows, int64_t cols, bool vector = false,
             Finite rule = Finite::Required) {
    auto it = entries_.find(name);
    if (it == entries_.end()) fail(dir_, ": tensor '", name, "' not found in the checkpoint");
    Source& s = it->second;
    s.used = true;
    const std::string where = s.file + ": tensor '" + name + "'";
    Tensor t;
    try {
      t.dtype = dtype_from_name(s.e.dtype);
    } catch (const Error&) {
      fail(where, ": unsupported dtype '", printable_name(s.e.dtype), "' (expected F32, F16 or BF16)");
    }
    std::vector<int64_t> want = vector ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols};
    if (s.e.shape != want) {
      std::string got, exp;
      for (auto d : s.e.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : want) exp += (exp.empty() ? "" : ", ") + std::to_string(d);
      fail(where, ": shape [", got, "] does not match the config (expected [", exp, "])");
    }
    t.data = s.e.data;
    t.rows = rows;
    t.cols = cols;
    // The format does not promise alignment (headers of old writers are not padded): the
    // kernels read whole elements, so a misaligned tensor is copied once.
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) t = w_.own_copy(t);
    finite_checks_.push_back({t, where, rule});
    return t;
  }

  // The NaN/Inf scan of every tensor taken, once all shapes are known to be right (it reads
  // every byte; a file with a bad header or shape is refused before that).
  void check_finite() {
    for (auto& [t, where, rule] : finite_checks_) {
      if (rule == Finite::Required) {
        require_finite(t, where);
      } else {
        w_.note_bad_embedding_rows(t, where);
      }
    }
    finite_checks_.clear();
  }

  // Norm weights are tiny and used every step in f32: widen once.
  Tensor get_f32_vector(const std::string& name, int64_t n) { return w_.own_f32(get(name, 1, n, true)); }

  // Tensors the model did not take: harmless leftovers of older writers, or an error (a layer
  // the config does not have, or a tensor of another architecture, such as biases).
  void check_unused(const ModelConfig& c) const {
    for (auto& [name, s] : entries_) {
      if (s.used) continue;
      const std::string where = s.file + ": tensor '" + printable_name(name) + "'";
      if (long l = layer_of(name); name.starts_with("model.layers.") && (l < 0 || l >= c.n_layers))
        fail(where, " belongs to no layer of the model (config.json: num_hidden_layers = ", c.n_layers, ")");
      // transformers before 4.32 saved RoPE's inverse frequencies; they are recomputed from the config.
      if (name.ends_with(".rotary_emb.inv_freq")) continue;
      // With tied embeddings transformers ignores a saved classifier and uses the embedding.
      if (name == "lm_head.weight" && c.tied_embeddings) continue;
      fail(where, ": unexpected tensor (not part of a Llama model: another architecture, or a corrupt checkpoint)");
    }
  }

 private:
  struct Source {
    SafetensorsEntry e;
    std::string file;
    bool used;
  };
  struct FiniteCheck {
    Tensor t;
    std::string where;
    Finite rule;
  };
  std::string dir_;
  ModelWeights& w_;
  std::map<std::string, Source> entries_;
  std::vector<FiniteCheck> finite_checks_;
};

// The model's tensors, each checked against the config; then no tensor may be left over.
void assemble(ModelWeights& w, TensorSource& src, const std::string& dir) {
  const ModelConfig& c = w.config;
  w.embed = src.get("model.embed_tokens.weight", c.vocab_size, c.dim, false,
                    c.tied_embeddings ? Finite::Required : Finite::RowsMayFail);
  for (int l = 0; l < c.n_layers; ++l) {
    w.layers.push_back(read_layer(src, hf_layer_prefix(l), &LayerTensorSpec::hf, c));
  }
  w.final_norm = src.get_f32_vector("model.norm.weight", c.dim);
  if (c.num_labels > 0) {  // LlamaForSequenceClassification: score.weight instead of lm_head
    w.score = src.get("score.weight", c.num_labels, c.dim);
    w.lm_head = w.embed;   // never used to predict (Llama refuses a reward model); keeps views valid
  } else if (c.tied_embeddings) {
    w.lm_head = w.embed;
  } else if (src.has("lm_head.weight")) {
    w.lm_head = src.get("lm_head.weight", c.vocab_size, c.dim);
  } else {
    fail(dir, ": tensor 'lm_head.weight' not found and tie_word_embeddings is false");
  }
  src.check_unused(c);
}

}  // namespace

std::unique_ptr<ModelWeights> load_hf_dir(const std::string& dir, bool no_mmap) {
  auto w = std::make_unique<ModelWeights>();
  const std::string cfg_path = dir + "/config.json";
  if (!fs::exists(cfg_path)) fail(dir, ": no config.json (expected a Hugging Face model directory)");
  w->config = parse_hf_config(read_text_file(cfg_path, kMaxConfigBytes), cfg_path);
  w->source = dir;
  w->format = "safetensors";

  TensorSource src(dir, *w);
  auto add_file = [&](const std::string& path) {
    auto map = std::make_unique<MappedFile>(path, no_mmap, /*populate_now=*/false);
    src.add(path, parse_safetensors(*map));
    w->maps.push_back(std::move(map));
  };
  const std::string index = dir + "/model.safetensors.index.json";
  if (fs::exists(index)) {
    const auto map = read_shard_index(index);
    std::set<std::string> files;
    for (auto& [name, f] : map) files.insert(f);
    for (auto& f : files) add_file(dir + "/" + f);
    src.check_index(index, map);
  } else if (fs::exists(dir + "/model.safetensors")) {
    add_file(dir + "/model.safetensors");
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json found");
  }
  assemble(*w, src, dir);
  for (auto& m : w->maps) m->populate();
  src.check_finite();
  return w;
}

std::unique_ptr<ModelWeights> load_hf_memory(const std::string& config_json, const uint8_t* data, size_t size,
                                             const std::string& path) {
  auto w = std::make_unique<ModelWeights>();
  w->config = parse_hf_config(config_json, "config.json");
  w->source = path;
  w->format = "safetensors";
  TensorSource src(path, *w);
  src.add(path, parse_safetensors(data, size, path));
  assemble(*w, src, path);
  src.check_finite();
  return w;
}

}  // namespace camelid
