// A Hugging Face Llama directory as llama.cpp's convert_hf_to_gguf.py writes it (build c392e50,
// Feb 2025): its metadata keys in its order (general.* from gguf-py's Metadata, llama.* from
// Model/LlamaModel.set_gguf_parameters, then the tokenizer), its tensor names and order, q/k rows
// permuted to Meta's interleaved RoPE pairs, and Llama 3.1's rope scaling as the rope_freqs
// tensor computed in float32 exactly as it does. The weights come from load_hf_dir, so
// everything camelid checks on load (shapes, shards, NaN/Inf) is checked before writing.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "model/gguf_export.h"
#include "model/tensor_names.h"

namespace camelid {

namespace fs = std::filesystem;
using json = nlohmann::json;

int64_t ExportTensor::rows() const {
  int64_t n = 1;
  for (size_t d = 1; d < ne.size(); ++d) n *= ne[d];
  return n;
}

const uint8_t* ExportTensor::row(int64_t r) const {
  if (permute_heads > 0) {
    // permute(): reshape(heads, 2, hd/2, cols).swapaxes(1, 2): output row (h, i, j) is input row
    // (h, j, i), i.e. the halves of each head are interleaved.
    const int64_t hd = rows() / permute_heads, h = r / hd, rem = r % hd;
    r = h * hd + (rem % 2) * (hd / 2) + rem / 2;
  }
  return data + size_t(r) * row_bytes(dtype, ne[0]);
}

DType convert_dtype(const ExportTensor& t, DType type) {
  const bool norm = t.name.size() >= 12 && t.name.compare(t.name.size() - 12, 12, "_norm.weight") == 0;
  return t.ne.size() <= 1 || norm ? DType::F32 : type;
}

namespace {

// gguf-py's Metadata.id_to_title: dashes to spaces, lower-case words title-cased (unless a
// version like v2 or a number).
std::string id_to_title(const std::string& id) {
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    bool has_cased = false, all_lower = true;
    for (unsigned char ch : word)
      if (std::isalpha(ch)) has_cased = true, all_lower &= bool(std::islower(ch));
    const bool version = (word[0] == 'v' && word.size() > 1 && std::isdigit(static_cast<unsigned char>(word[1]))) ||
                         std::isdigit(static_cast<unsigned char>(word[0]));
    if (has_cased && all_lower && !version) {  // str.title(): a letter after a non-letter is upper-cased
      bool prev_alpha = false;
      for (char& ch : word) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(ch));
        if (alpha) ch = char(prev_alpha ? std::tolower(ch) : std::toupper(ch));
        prev_alpha = alpha;
      }
    }
    out += (out.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char ch : id) {
    if (ch == '-' || ch == ' ' || ch == '\t' || ch == '\n') flush();
    else word += ch;
  }
  flush();
  return out;
}

// general.name: config.json's _name_or_path when it is a model id ("org/name"), else the
// directory's name, as the converter's heuristics do (its basename/finetune/version guesses are
// informational and left out).
std::string model_name(const std::string& dir, const json& cfg) {
  if (auto it = cfg.find("_name_or_path"); it != cfg.end() && it->is_string()) {
    const std::string id = it->get<std::string>();
    if (!id.empty() && std::count(id.begin(), id.end(), '/') <= 1) return id_to_title(id.substr(id.find('/') + 1));
  }
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return id_to_title(p.filename().string());
}

// gguf-py's model_weight_count_rounded_notation(n, min_digits=2): "8.3M", "450M", "8.0B".
std::string size_label(uint64_t n) {
  double scaled;
  const char* suffix;
  if (n > 1e12) scaled = n * 1e-12, suffix = "T";
  else if (n > 1e9) scaled = n * 1e-9, suffix = "B";
  else if (n > 1e6) scaled = n * 1e-6, suffix = "M";
  else scaled = n * 1e-3, suffix = "K";
  std::string digits = std::to_string(int64_t(std::nearbyint(scaled)));  // Python's round(): half to even
  digits.erase(0, digits.find_first_not_of('0') == std::string::npos ? digits.size() : digits.find_first_not_of('0'));
  const int fix = std::max(2 - int(digits.size()), 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
  return buf;
}

// LlamaModel.generate_extra_tensors: Llama 3.1's per-pair divisors, in float32 with torch's
// operations (a / tensor is tensor.reciprocal() * a), so the bytes match the converter's.
// original_max_position_embeddings is rope_scaling's (the converter reads a top-level key that
// real configs lack and falls back to 8192, the value every Llama 3.x has).
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& r = c.rope_scaling;
  const float base = float(c.rope_theta), factor = float(r.factor);
  const float low = float(r.low_freq_factor), high = float(r.high_freq_factor);
  const float old_ctx = float(r.original_max_position);
  const double low_wavelen = r.original_max_position / r.low_freq_factor;
  const double high_wavelen = r.original_max_position / r.high_freq_factor;
  std::vector<float> out;
  for (int i = 0; i < c.head_dim; i += 2) {
    const float e = float(i) / float(c.head_dim);
    const float freq = 1.0f / float(std::pow(double(base), double(e)));
    const float wavelen = (1.0f / freq) * float(2 * M_PI);
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      const float smooth = ((1.0f / wavelen) * old_ctx - low) / (high - low);
      out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return out;
}

// Tensor name -> shard file (model.safetensors.index.json), or "" for a single file.
std::map<std::string, std::string> shard_of(const std::string& dir) {
  std::map<std::string, std::string> out;
  const std::string index = dir + "/model.safetensors.index.json";
  if (!fs::exists(index)) return out;
  const json j = parse_json(read_text_file(index, size_t(64) << 20), index);  // already checked by load_hf_dir
  for (auto& [name, file] : j.at("weight_map").items()) out[name] = file.get<std::string>();
  return out;
}

ExportTensor tensor_of(const std::string& name, const Tensor& t, bool vector, int permute_heads = 0) {
  ExportTensor e;
  e.name = name;
  e.ne = vector ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.cols, t.rows};
  e.dtype = t.dtype;
  e.data = static_cast<const uint8_t*>(t.data);
  e.permute_heads = permute_heads;
  return e;
}

// The checkpoint's tensors by their Hugging Face names, renamed and permuted.
std::map<std::string, ExportTensor> tensors_by_hf_name(const ModelWeights& w) {
  const ModelConfig& c = w.config;
  std::map<std::string, ExportTensor> m;
  m["model.embed_tokens.weight"] = tensor_of("token_embd.weight", w.embed, false);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    const std::string hf = hf_layer_prefix(l), gg = gguf_layer_prefix(l);
    for (const LayerTensorSpec& t : kLayerTensors) {
      const int heads = t.rope_heads == 1 ? c.n_heads : t.rope_heads == 2 ? c.n_kv_heads : 0;
      m[hf + t.hf] = tensor_of(gg + t.gguf, L.*t.member, t.vector, heads);
    }
  }
  m["model.norm.weight"] = tensor_of("output_norm.weight", w.final_norm, true);
  // Tied: transformers ignores a saved lm_head, and so does the file (token_embd classifies).
  if (!c.tied_embeddings) m["lm_head.weight"] = tensor_of("output.weight", w.lm_head, false);
  return m;
}

uint32_t u32_field(const json& cfg, const char* key) { return uint32_t(cfg.at(key).get<int64_t>()); }

}  // namespace

ExportModel export_hf_model(const std::string& dir, DType type, const TokenizerMetadataFn& tokenizer) {
  ExportModel m;
  m.weights = load_hf_dir(dir);
  const ModelWeights& w = *m.weights;
  if (type == DType::Count) type = w.main_dtype();
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16)
    fail("convert: output type ", dtype_name(type), " is not a float type (f32, f16 or bf16; quantize with `camelid quantize`)");
  const ModelConfig& c = w.config;
  const std::string cfg_path = dir + "/config.json";
  const json cfg = parse_json(read_text_file(cfg_path, size_t(16) << 20), cfg_path);  // checked by load_hf_dir
  m.n_layers = c.n_layers, m.n_heads = c.n_heads, m.n_kv_heads = c.n_kv_heads;

  // Tensors: rope_freqs first (generate_extra_tensors), then each shard's tensors in name order
  // (safetensors lists them sorted), shards in file-name order.
  if (c.rope_scaling.type == RopeScaling::Type::Llama3) {
    const Tensor f = m.weights->own(llama3_rope_factors(c), 1, c.head_dim / 2);
    m.tensors.push_back(tensor_of("rope_freqs.weight", f, true));
  }
  const auto by_name = tensors_by_hf_name(w);
  const auto shards = shard_of(dir);
  std::vector<std::pair<std::string, std::string>> order;  // (shard, name)
  for (auto& [name, t] : by_name) order.emplace_back(shards.count(name) ? shards.at(name) : "", name);
  std::sort(order.begin(), order.end());
  for (auto& [shard, name] : order) m.tensors.push_back(by_name.at(name));

  uint64_t params = 0;
  for (const ExportTensor& t : m.tensors) params += uint64_t(t.numel());
  const FileType ftype = type == DType::F32 ? FileType::F32 : type == DType::F16 ? FileType::F16 : FileType::BF16;

  gguf::KeyValues& kv = m.metadata;
  auto add = [&](const std::string& k, gguf::Value v) { kv.emplace_back(k, std::move(v)); };
  auto has = [&](const char* k) { return cfg.contains(k) && !cfg[k].is_null(); };
  add("general.architecture", gguf::string_value("llama"));
  add("general.type", gguf::string_value("model"));
  add("general.name", gguf::string_value(model_name(dir, cfg)));
  add("general.size_label", gguf::string_value(size_label(params)));
  add("llama.block_count", gguf::u32_value(uint32_t(c.n_layers)));
  if (has("max_position_embeddings")) add("llama.context_length", gguf::u32_value(u32_field(cfg, "max_position_embeddings")));
  add("llama.embedding_length", gguf::u32_value(uint32_t(c.dim)));
  add("llama.feed_forward_length", gguf::u32_value(uint32_t(c.hidden_dim)));
  add("llama.attention.head_count", gguf::u32_value(uint32_t(c.n_heads)));
  if (has("num_key_value_heads")) add("llama.attention.head_count_kv", gguf::u32_value(uint32_t(c.n_kv_heads)));
  if (has("rope_theta")) add("llama.rope.freq_base", gguf::f32_value(float(c.rope_theta)));
  if (has("rms_norm_eps")) add("llama.attention.layer_norm_rms_epsilon", gguf::f32_value(float(c.norm_eps)));
  if (has("head_dim")) {
    add("llama.attention.key_length", gguf::u32_value(uint32_t(c.head_dim)));
    add("llama.attention.value_length", gguf::u32_value(uint32_t(c.head_dim)));
  }
  add("general.file_type", gguf::u32_value(uint32_t(ftype)));
  add("llama.vocab_size", gguf::u32_value(uint32_t(c.vocab_size)));
  add("llama.rope.dimension_count", gguf::u32_value(uint32_t(c.head_dim)));
  if (c.rope_scaling.type == RopeScaling::Type::Linear) {
    add("llama.rope.scaling.type", gguf::string_value("linear"));
    add("llama.rope.scaling.factor", gguf::f32_value(float(c.rope_scaling.factor)));
  }
  if (tokenizer)
    for (auto& [k, v] : tokenizer(c.vocab_size)) add(k, std::move(v));
  add("general.quantization_version", gguf::u32_value(2));  // GGML_QNT_VERSION
  return m;
}

}  // namespace camelid
