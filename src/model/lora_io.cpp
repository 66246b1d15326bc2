#include "model/lora_io.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/mmap_file.h"
#include "model/safetensors.h"
#include "model/tensor_names.h"

namespace camelid {

using json = nlohmann::json;

int64_t rope_row_in_hf(int64_t r, int64_t rows, int heads) {
  const int64_t hd = rows / heads, h = r / hd, rem = r % hd;
  return h * hd + (rem % 2) * (hd / 2) + rem / 2;
}

namespace {

bool is_null_or_empty(const json& v) { return v.is_null() || ((v.is_object() || v.is_array()) && v.empty()); }

std::vector<LoraTarget> parse_targets(const json& v, const std::string& source) {
  std::vector<LoraTarget> out;
  if (v.is_string()) {
    if (v.get<std::string>() != "all-linear")
      fail(source, ": target_modules '", printable_name(v.get<std::string>()),
           "' is a regular expression, which camelid does not run; list the modules (q_proj, ...) or use \"all-linear\"");
    for (const LoraTargetSpec& t : lora_targets()) out.push_back(t.target);
    return out;
  }
  if (!v.is_array()) fail(source, ": target_modules must be a list of module names or \"all-linear\"");
  if (v.size() > 64) fail(source, ": target_modules has ", v.size(), " entries");
  for (const json& e : v) {
    if (!e.is_string()) fail(source, ": target_modules holds a non-string");
    try {
      out.push_back(lora_target_from_name(e.get<std::string>()));
    } catch (const Error& err) {
      fail(source, ": ", err.what());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

LoraConfig parse_lora_config(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  if (!j.is_object()) fail(source, ": not a JSON object");
  auto field = [&](const char* key) -> const json* {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  auto number = [&](const char* key, double dflt) {
    const json* v = field(key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_number()) fail(source, ": ", key, " must be a number");
    return v->get<double>();
  };
  auto flag = [&](const char* key) {
    const json* v = field(key);
    if (!v || v->is_null()) return false;
    if (!v->is_boolean()) fail(source, ": ", key, " must be true or false");
    return v->get<bool>();
  };
  const json* type = field("peft_type");
  if (!type) fail(source, ": no peft_type (expected \"LORA\")");
  if (!type->is_string() || type->get<std::string>() != "LORA")
    fail(source, ": peft_type is ", type->is_string() ? printable_name(type->get<std::string>()) : type->dump(),
         ", camelid runs only LORA adapters");
  if (const json* t = field("task_type"); t && !t->is_null() && (!t->is_string() || t->get<std::string>() != "CAUSAL_LM"))
    fail(source, ": task_type must be CAUSAL_LM");

  LoraConfig c;
  const json* r = field("r");
  if (!r || !r->is_number_integer()) fail(source, ": r (the rank) must be an integer");
  if (r->get<int64_t>() < 1 || r->get<int64_t>() > LoraConfig::kMaxRank)
    fail(source, ": LoRA rank r = ", r->get<int64_t>(), " is out of range (1..", LoraConfig::kMaxRank, ")");
  c.r = int(r->get<int64_t>());
  c.alpha = number("lora_alpha", 8);  // PEFT's default
  c.dropout = number("lora_dropout", 0);
  c.use_rslora = flag("use_rslora");
  const json* tm = field("target_modules");
  if (!tm || tm->is_null()) fail(source, ": no target_modules");
  c.targets = parse_targets(*tm, source);
  if (const json* b = field("base_model_name_or_path"); b && b->is_string()) c.base_model = b->get<std::string>();

  // What camelid does not run is refused rather than silently run differently.
  if (const json* b = field("bias"); b && !b->is_null() && (!b->is_string() || b->get<std::string>() != "none"))
    fail(source, ": bias must be \"none\" (adapters with bias terms are not supported)");
  for (const char* key : {"fan_in_fan_out", "use_dora", "lora_bias"})
    if (flag(key)) fail(source, ": ", key, " = true is not supported");
  for (const char* key : {"rank_pattern", "alpha_pattern", "layers_to_transform", "layers_pattern", "modules_to_save"})
    if (const json* v = field(key); v && !is_null_or_empty(*v)) fail(source, ": ", key, " is not supported (must be empty)");
  c.validate(source);
  return c;
}

std::string lora_config_json(const LoraConfig& c) {
  json targets = json::array();
  for (LoraTarget t : c.targets) targets.push_back(lora_target(t).peft);
  const bool int_alpha = c.alpha == std::floor(c.alpha) && std::fabs(c.alpha) < 1e9;
  json j = {{"alpha_pattern", json::object()},
            {"auto_mapping", nullptr},
            {"base_model_name_or_path", c.base_model.empty() ? json(nullptr) : json(c.base_model)},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"inference_mode", true},
            {"init_lora_weights", true},
            {"layers_pattern", nullptr},
            {"layers_to_transform", nullptr},
            {"lora_alpha", int_alpha ? json(int64_t(c.alpha)) : json(c.alpha)},
            {"lora_dropout", c.dropout},
            {"modules_to_save", nullptr},
            {"peft_type", "LORA"},
            {"r", c.r},
            {"rank_pattern", json::object()},
            {"revision", nullptr},
            {"target_modules", targets},
            {"task_type", "CAUSAL_LM"},
            {"use_dora", false},
            {"use_rslora", c.use_rslora}};
  return dump_json(j, 2) + "\n";
}

void save_lora(const std::string& dir, const LoraAdapter& a, const ModelConfig& base) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create directory: ", ec.message());
  std::vector<SafetensorsOut> ts;
  for (size_t l = 0; l < a.index.size(); ++l)
    for (const LoraTargetSpec& spec : lora_targets()) {
      const Param* A = a.A(int(l), spec.target);
      if (!A) continue;
      for (const Param* p : {A, A + 1}) {
        SafetensorsOut t{p->name, DType::F32, {p->rows, p->cols}, std::vector<uint8_t>(p->numel() * 4)};
        const int heads = spec.target == LoraTarget::Q ? base.n_heads : base.n_kv_heads;
        const bool permute = p == A + 1 && spec.rope_rows && base.rope_interleaved;
        for (int64_t r = 0; r < p->rows; ++r) {
          const int64_t to = permute ? rope_row_in_hf(r, p->rows, heads) : r;
          std::memcpy(&t.bytes[size_t(to * p->cols) * 4], &p->value[size_t(r * p->cols)], size_t(p->cols) * 4);
        }
        ts.push_back(std::move(t));
      }
    }
  // Safetensors first, the config last: a directory with a config always has its weights.
  write_safetensors(dir + "/adapter_model.safetensors", ts);
  std::ofstream f(dir + "/adapter_config.json", std::ios::binary);
  f << lora_config_json(a.config);
  if (!f.flush()) fail(dir, "/adapter_config.json: cannot write");
}

std::shared_ptr<LoraAdapter> load_lora_memory(const std::string& config_json, const uint8_t* data, size_t size,
                                              const ModelConfig& base, const std::string& dir) {
  const std::string cfg_path = dir + "/adapter_config.json", st_path = dir + "/adapter_model.safetensors";
  const LoraConfig cfg = parse_lora_config(config_json, cfg_path);
  auto a = std::make_shared<LoraAdapter>(lora_init(cfg, base, 0));
  std::set<std::string> seen;
  for (const auto& [name, e] : parse_safetensors(data, size, st_path)) {
    Param* p = a->params.find(name);
    if (!p) {
      fail(st_path, ": tensor '", printable_name(name), "' is not the lora_A/lora_B weight of a target module (",
           "target_modules) on layers 0..", base.n_layers - 1, " of the base model; names look like ",
           lora_param_name(0, cfg.targets[0], false));
    }
    if (e.shape.size() != 2 || e.shape[0] != p->rows || e.shape[1] != p->cols)
      fail(st_path, ": tensor ", name, " has shape ", e.shape.size() == 2 ? "[" + std::to_string(e.shape[0]) + ", " + std::to_string(e.shape[1]) + "]" : std::to_string(e.shape.size()) + "-D",
           ", expected [", p->rows, ", ", p->cols, "] (r = ", cfg.r, " and the base model's dimensions)");
    DType dt;
    if (e.dtype == "F32") dt = DType::F32;
    else if (e.dtype == "F16") dt = DType::F16;
    else if (e.dtype == "BF16") dt = DType::BF16;
    else fail(st_path, ": tensor ", name, " is ", printable_name(e.dtype), " (expected F32, F16 or BF16)");
    seen.insert(name);
    const size_t rb = row_bytes(dt, p->cols);
    const std::string_view suffix = ".lora_B.weight";
    const bool is_b = name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    LoraTarget t = LoraTarget::Q;
    for (const LoraTargetSpec& s : lora_targets())
      if (name.find("." + std::string(s.module) + ".") != std::string::npos) t = s.target;
    const bool permute = is_b && lora_target(t).rope_rows && base.rope_interleaved;
    const int heads = t == LoraTarget::Q ? base.n_heads : base.n_kv_heads;
    for (int64_t r = 0; r < p->rows; ++r) {
      const int64_t from = permute ? rope_row_in_hf(r, p->rows, heads) : r;
      to_f32(dt, e.data + size_t(from) * rb, &p->value[size_t(r * p->cols)], size_t(p->cols));
    }
    for (float v : p->value)
      if (!std::isfinite(v)) fail(st_path, ": tensor ", name, " holds NaN or Inf");
  }
  for (const Param& p : a->params.params)
    if (!seen.count(p.name)) fail(st_path, ": tensor ", p.name, " is missing (target_modules lists its module)");
  for (Param& p : a->params.params) p.grad.clear(), p.grad.shrink_to_fit(), p.trainable = false;
  return a;
}

std::shared_ptr<LoraAdapter> load_lora(const std::string& dir, const ModelConfig& base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory (expected a PEFT adapter: adapter_config.json + adapter_model.safetensors)");
  const std::string cfg = dir + "/adapter_config.json", st = dir + "/adapter_model.safetensors";
  if (!fs::exists(cfg, ec)) fail(cfg, ": no such file (not a PEFT adapter directory)");
  if (!fs::exists(st, ec))
    fail(st, ": no such file", fs::exists(dir + "/adapter_model.bin", ec) ? " (adapter_model.bin, PyTorch's pickle format, is not read: save with safe_serialization)" : "");
  const std::string text = read_text_file(cfg, size_t(1) << 20);
  MappedFile file(st);
  return load_lora_memory(text, file.data(), file.size(), base, dir);
}

}  // namespace camelid
