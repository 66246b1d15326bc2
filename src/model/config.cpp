#include "model/config.h"

#include <climits>
#include <cmath>
#include <cfloat>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"

namespace camelid {

using json = nlohmann::json;

namespace {

// Field readers: absent or null gives the default, a present field of the wrong type fails (a
// config that says "hidden_size": "big" is broken, not defaulted).
int get_int(const json& j, const char* key, const std::string& src, int def, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(src, ": missing field '", key, "'");
    return def;
  }
  if (!it->is_number_integer()) fail(src, ": field '", key, "' must be an integer, got ", dump_json(*it).substr(0, 100));
  if (it->is_number_unsigned() ? it->get<uint64_t>() > uint64_t(INT32_MAX)
                               : (it->get<int64_t>() < 0 || it->get<int64_t>() > INT32_MAX))
    fail(src, ": field '", key, "' = ", dump_json(*it), " is out of range");
  return int(it->get<int64_t>());
}

double get_num(const json& j, const char* key, const std::string& src, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) fail(src, ": field '", key, "' must be a number, got ", dump_json(*it).substr(0, 100));
  return it->get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& src, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) fail(src, ": field '", key, "' must be true or false, got ", dump_json(*it).substr(0, 100));
  return it->get<bool>();
}

std::string get_str(const json& j, const char* key, const std::string& src, const std::string& def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_string()) fail(src, ": field '", key, "' must be a string, got ", dump_json(*it).substr(0, 100));
  return it->get<std::string>();
}

// A token id or a list of them; each must fit an int (vocab_size is checked in validate).
std::vector<int> get_ids(const json& j, const char* key, const std::string& src) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  std::vector<int> ids;
  auto add = [&](const json& v) {
    const bool ok = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(INT32_MAX)
                                           : v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
    if (!ok) fail(src, ": field '", key, "' must be a token id or a list of them, got ", dump_json(*it).substr(0, 100));
    ids.push_back(int(v.get<int64_t>()));
  };
  if (it->is_array()) {
    for (auto& v : *it) add(v);
  } else {
    add(*it);
  }
  return ids;
}

// Quoted, printable and short, for messages about strings from the file.
std::string shown(const json& v) { return dump_json(v).substr(0, 100); }

}  // namespace

ModelConfig parse_hf_config(const std::string& text, const std::string& src) {
  const json j = parse_json(text, src);
  if (!j.is_object()) fail(src, ": expected a JSON object");

  std::string mt = get_str(j, "model_type", src, "llama");
  if (mt != "llama") fail(src, ": unsupported model_type ", shown(mt), " (camelid runs llama)");
  bool classifier = false;
  if (auto a = j.find("architectures"); a != j.end() && a->is_array()) {
    for (auto& name : *a) {
      if (name.is_string() && name.get<std::string>() == "LlamaForSequenceClassification" && a->size() == 1) {
        classifier = true;
        continue;
      }
      if (!name.is_string() || name.get<std::string>() != "LlamaForCausalLM")
        fail(src, ": unsupported architecture ", shown(name), " (expected LlamaForCausalLM or LlamaForSequenceClassification)");
    }
  }
  if (get_bool(j, "attention_bias", src, false) || get_bool(j, "mlp_bias", src, false))
    fail(src, ": attention_bias/mlp_bias are not supported by Llama models");
  if (auto act = get_str(j, "hidden_act", src, "silu"); act != "silu")
    fail(src, ": unsupported hidden_act ", shown(act), " (expected silu)");

  ModelConfig c;
  c.vocab_size = get_int(j, "vocab_size", src, 0, true);
  c.dim = get_int(j, "hidden_size", src, 0, true);
  c.hidden_dim = get_int(j, "intermediate_size", src, 0, true);
  c.n_layers = get_int(j, "num_hidden_layers", src, 0, true);
  c.n_heads = get_int(j, "num_attention_heads", src, 0, true);
  c.n_kv_heads = get_int(j, "num_key_value_heads", src, c.n_heads, false);
  c.head_dim = get_int(j, "head_dim", src, c.n_heads > 0 ? c.dim / c.n_heads : 0, false);
  c.max_seq_len = get_int(j, "max_position_embeddings", src, 2048, false);
  c.rope_theta = get_num(j, "rope_theta", src, 10000.0);
  c.norm_eps = get_num(j, "rms_norm_eps", src, 1e-6);
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", src, false);
  auto bos = get_ids(j, "bos_token_id", src);
  c.bos_id = bos.empty() ? -1 : bos[0];
  c.eos_ids = get_ids(j, "eos_token_id", src);
  if (classifier) {
    // transformers saves num_labels as id2label (one entry per label); a bare num_labels is read too.
    int labels = get_int(j, "num_labels", src, 0, false);
    if (auto il = j.find("id2label"); il != j.end() && il->is_object()) labels = int(il->size());
    if (labels != 1)
      fail(src, ": LlamaForSequenceClassification with ", labels, " labels (camelid scores with one: a reward model, num_labels 1)");
    c.num_labels = 1;
  }

  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) fail(src, ": field 'rope_scaling' must be an object");
    const std::string field = src + ": rope_scaling";
    std::string type = get_str(*rs, "rope_type", field, get_str(*rs, "type", field, ""));
    auto& r = c.rope_scaling;
    r.factor = get_num(*rs, "factor", field, 1.0);
    if (type == "llama3") {
      r.type = RopeScaling::Type::Llama3;
      r.low_freq_factor = get_num(*rs, "low_freq_factor", field, 1.0);
      r.high_freq_factor = get_num(*rs, "high_freq_factor", field, 4.0);
      r.original_max_position = get_int(*rs, "original_max_position_embeddings", field, 8192, false);
    } else if (type == "linear") {
      r.type = RopeScaling::Type::Linear;
    } else if (type == "default" || type.empty()) {
      r.type = RopeScaling::Type::None;
    } else {
      fail(field, ": unsupported rope type ", shown(type), " (expected llama3 or linear)");
    }
  }
  c.validate(src);
  return c;
}

void ModelConfig::validate(const std::string& src) const {
  auto in_range = [&](const char* name, int v, int max) {
    if (v <= 0 || v > max) fail(src, ": ", name, " = ", v, " is out of range (1..", max, ")");
  };
  in_range("vocab_size", vocab_size, ConfigLimits::vocab);
  in_range("hidden_size", dim, ConfigLimits::dim);
  in_range("intermediate_size", hidden_dim, ConfigLimits::hidden);
  in_range("num_hidden_layers", n_layers, ConfigLimits::layers);
  in_range("num_attention_heads", n_heads, ConfigLimits::heads);
  in_range("num_key_value_heads", n_kv_heads, ConfigLimits::heads);
  in_range("head_dim", head_dim, ConfigLimits::head_dim);
  in_range("max_position_embeddings", max_seq_len, ConfigLimits::positions);
  // Both factors are below 2^12, so the product cannot overflow.
  if (n_heads * head_dim > ConfigLimits::q_dim)
    fail(src, ": num_attention_heads x head_dim = ", n_heads * head_dim, " is out of range (1..",
         ConfigLimits::q_dim, ")");
  if (n_heads % n_kv_heads != 0)
    fail(src, ": num_attention_heads (", n_heads, ") is not a multiple of num_key_value_heads (",
         n_kv_heads, ")");
  if (head_dim % 2 != 0) fail(src, ": head_dim must be even for RoPE, got ", head_dim);
  // Both are used as float: beyond FLT_MAX the conversion is undefined.
  if (!(rope_theta > 0 && rope_theta <= FLT_MAX)) fail(src, ": rope_theta must be a finite number > 0, got ", rope_theta);
  if (!(norm_eps > 0 && norm_eps <= FLT_MAX)) fail(src, ": rms_norm_eps must be a finite number > 0, got ", norm_eps);
  const auto& r = rope_scaling;
  if (r.type != RopeScaling::Type::None) {
    // Real factors are 2..64; the bounds keep every scaled frequency a float.
    if (!(r.factor >= 1e-6 && r.factor <= 1e6))
      fail(src, ": rope_scaling.factor must be a number in [1e-6, 1e6], got ", r.factor);
  }
  if (r.type == RopeScaling::Type::Llama3) {
    if (!(r.low_freq_factor > 0) || !std::isfinite(r.low_freq_factor) || !std::isfinite(r.high_freq_factor))
      fail(src, ": rope_scaling.low_freq_factor/high_freq_factor must be finite numbers > 0");
    if (r.high_freq_factor <= r.low_freq_factor)
      fail(src, ": rope_scaling: high_freq_factor must exceed low_freq_factor");
    in_range("rope_scaling.original_max_position_embeddings", r.original_max_position, ConfigLimits::positions);
  }
  if (num_labels < 0 || num_labels > 1) fail(src, ": num_labels = ", num_labels, " (camelid's classifier head has 1 label)");
  if (bos_id >= vocab_size) fail(src, ": bos_token_id ", bos_id, " >= vocab_size ", vocab_size);
  for (int e : eos_ids)
    if (e >= vocab_size) fail(src, ": eos_token_id ", e, " >= vocab_size ", vocab_size);
}

std::vector<float> ModelConfig::rope_inv_freq() const {
  // Rounded to float32 like the reference implementation (transformers keeps inv_freq in f32).
  const int half = head_dim / 2;
  std::vector<double> f(half);
  for (int i = 0; i < half; ++i) f[i] = 1.0 / double(std::pow(float(rope_theta), float(2 * i) / head_dim));
  const auto& r = rope_scaling;
  if (r.type == RopeScaling::Type::Linear) {
    for (auto& x : f) x /= r.factor;
  } else if (r.type == RopeScaling::Type::Llama3) {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, a smooth ramp between.
    const double low_wl = r.original_max_position / r.low_freq_factor;
    const double high_wl = r.original_max_position / r.high_freq_factor;
    for (auto& x : f) {
      const double wl = 2 * M_PI / x;
      if (wl > low_wl) {
        x /= r.factor;
      } else if (wl >= high_wl) {
        double s = (r.original_max_position / wl - r.low_freq_factor) /
                   (r.high_freq_factor - r.low_freq_factor);
        x = (1 - s) * x / r.factor + s * x;
      }
    }
  }
  if (!rope_freq_factors.empty())
    for (int i = 0; i < half; ++i) f[i] = double(float(f[i]) / rope_freq_factors[i]);  // as ggml: in f32
  return std::vector<float>(f.begin(), f.end());
}

json ModelConfig::to_json() const {
  json j = {{"vocab_size", vocab_size}, {"hidden_size", dim}, {"intermediate_size", hidden_dim},
            {"num_hidden_layers", n_layers}, {"num_attention_heads", n_heads},
            {"num_key_value_heads", n_kv_heads}, {"head_dim", head_dim},
            {"max_position_embeddings", max_seq_len}, {"rope_theta", rope_theta},
            {"rms_norm_eps", norm_eps}, {"tie_word_embeddings", tied_embeddings},
            {"bos_token_id", bos_id >= 0 ? json(bos_id) : json(nullptr)}, {"eos_token_id", eos_ids}};
  if (num_labels > 0) {
    json id2label = json::object(), label2id = json::object();
    for (int i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    j["id2label"] = id2label, j["label2id"] = label2id;
  }
  const char* types[] = {"none", "linear", "llama3"};
  if (rope_scaling.type != RopeScaling::Type::None)
    j["rope_scaling"] = {{"rope_type", types[int(rope_scaling.type)]},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position}};
  return j;
}

}  // namespace camelid
