// LoRA adapters in PEFT's layout: adapter_config.json as PEFT writes it, adapter_model.safetensors
// with PEFT's names, the round trip (and the q/k row order over an interleaved-RoPE base), and
// hostile files: each defect is an Error naming the file and the field or tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/lora_io.h"
#include "model/lora_merge.h"
#include "model/tensor_names.h"
#include "model_files.h"

namespace camelid {
namespace {

using test::expect_error;
using test::read_file;
using test::spit;
using test::TempDir;
using json = nlohmann::json;

ModelConfig base_config(bool interleaved = false) {
  ModelConfig c = test::small_spec().config;
  c.rope_interleaved = interleaved;
  return c;
}

LoraConfig qv_config() {
  LoraConfig lc;
  lc.r = 4, lc.alpha = 8, lc.dropout = 0.05, lc.targets = {LoraTarget::Q, LoraTarget::V, LoraTarget::Down};
  lc.base_model = "tiny";
  return lc;
}

LoraAdapter random_adapter(const ModelConfig& c, uint64_t seed = 3) {
  LoraAdapter a = lora_init(qv_config(), c, seed);
  int k = 0;
  for (Param& p : a.params.params)
    for (float& v : p.value) v += 0.01f * float((k++ * 37) % 23 - 11);
  return a;
}

const std::string kConfig = R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_dropout": 0.1,
  "target_modules": ["v_proj", "q_proj"], "task_type": "CAUSAL_LM", "bias": "none",
  "fan_in_fan_out": false, "use_rslora": false, "use_dora": false, "rank_pattern": {}, "alpha_pattern": {},
  "modules_to_save": null, "layers_to_transform": null, "inference_mode": true, "init_lora_weights": true,
  "base_model_name_or_path": "meta-llama/Llama-2-7b-hf", "revision": null})";

TEST(LoraConfigFile, ReadsWhatPeftWrites) {
  const LoraConfig c = parse_lora_config(kConfig, "adapter_config.json");
  EXPECT_EQ(c.r, 4);
  EXPECT_EQ(c.alpha, 8);
  EXPECT_DOUBLE_EQ(c.dropout, 0.1);
  EXPECT_EQ(c.targets, (std::vector<LoraTarget>{LoraTarget::Q, LoraTarget::V}));
  EXPECT_EQ(c.base_model, "meta-llama/Llama-2-7b-hf");
  EXPECT_DOUBLE_EQ(c.scale(), 2.0);
  // What camelid writes reads back the same, with PEFT's fields.
  const json j = json::parse(lora_config_json(c));
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["lora_alpha"], 8);
  EXPECT_EQ(j["target_modules"], json({"q_proj", "v_proj"}));
  const LoraConfig back = parse_lora_config(lora_config_json(c), "x");
  EXPECT_EQ(back.targets, c.targets);
  EXPECT_EQ(back.r, c.r);
  // all-linear and rsLoRA's scale.
  json k = json::parse(kConfig);
  k["target_modules"] = "all-linear", k["use_rslora"] = true;
  const LoraConfig all = parse_lora_config(k.dump(), "x");
  EXPECT_EQ(all.targets.size(), 7u);
  EXPECT_DOUBLE_EQ(all.scale(), 4.0);
}

TEST(LoraConfigFile, HostileOrUnsupportedConfigsAreErrorsNamingTheField) {
  auto with = [](const char* key, json v) {
    json j = json::parse(kConfig);
    if (v.is_discarded()) j.erase(key); else j[key] = v;
    return j.dump();
  };
  const json gone = json(json::value_t::discarded);
  const std::string f = "dir/adapter_config.json";
  auto bad = [&](const std::string& text, std::initializer_list<std::string> parts) {
    expect_error([&] { parse_lora_config(text, f); }, parts);
  };
  bad("[1]", {f, "not a JSON object"});
  bad("{", {f});
  bad(with("peft_type", "PREFIX_TUNING"), {f, "peft_type", "PREFIX_TUNING"});
  bad(with("peft_type", gone), {f, "no peft_type"});
  bad(with("r", 0), {f, "rank r = 0"});
  bad(with("r", 1 << 20), {f, "out of range"});
  bad(with("r", 2.5), {f, "r (the rank) must be an integer"});
  bad(with("r", "8"), {f, "integer"});
  bad(with("lora_alpha", "x"), {f, "lora_alpha"});
  bad(with("lora_dropout", 1.0), {f, "lora_dropout"});
  bad(with("target_modules", json::array({"q_proj", "lm_head"})), {f, "lm_head"});
  bad(with("target_modules", json::array({"q_proj", "q"})), {f, "q_proj is listed twice"});
  bad(with("target_modules", json::array()), {f, "no LoRA target modules"});
  bad(with("target_modules", ".*proj"), {f, "regular expression"});
  bad(with("target_modules", gone), {f, "no target_modules"});
  bad(with("bias", "all"), {f, "bias"});
  bad(with("use_dora", true), {f, "use_dora"});
  bad(with("fan_in_fan_out", true), {f, "fan_in_fan_out"});
  bad(with("rank_pattern", json{{"q_proj", 8}}), {f, "rank_pattern"});
  bad(with("layers_to_transform", json::array({0})), {f, "layers_to_transform"});
  bad(with("modules_to_save", json::array({"lm_head"})), {f, "modules_to_save"});
  bad(with("task_type", "SEQ_CLS"), {f, "task_type"});
}

TEST(LoraFiles, SaveAndLoadKeepEveryValueUnderPeftNames) {
  for (bool interleaved : {false, true}) {
    TempDir dir;
    const ModelConfig c = base_config(interleaved);
    const LoraAdapter a = random_adapter(c);
    save_lora(dir.str(), a, c);
    const auto st = parse_safetensors(reinterpret_cast<const uint8_t*>(read_file(dir / "adapter_model.safetensors").data()),
                                      read_file(dir / "adapter_model.safetensors").size(), "x");
    EXPECT_EQ(st.size(), size_t(2 * 3 * c.n_layers));
    ASSERT_TRUE(st.count("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"));
    ASSERT_TRUE(st.count("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"));
    EXPECT_EQ(st.at("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape,
              (std::vector<int64_t>{c.dim, 4}));
    EXPECT_EQ(st.at("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").dtype, "F32");
    const auto back = load_lora(dir.str(), c);
    ASSERT_EQ(back->params.params.size(), a.params.params.size());
    for (size_t i = 0; i < a.params.params.size(); ++i) {
      EXPECT_EQ(back->params.params[i].name, a.params.params[i].name);
      EXPECT_EQ(back->params.params[i].value, a.params.params[i].value) << a.params.params[i].name;
      EXPECT_TRUE(back->params.params[i].grad.empty());
    }
    // The file holds Hugging Face's row order: read over the other layout, q's B rows move.
    const auto other = load_lora(dir.str(), base_config(!interleaved));
    const Param* qb = a.B(0, LoraTarget::Q);
    const Param* ob = other->B(0, LoraTarget::Q);
    EXPECT_NE(ob->value, qb->value);
    const int64_t row = 1, hf = rope_row_in_hf(row, qb->rows, c.n_heads);
    const int64_t from = interleaved ? hf : row, to = interleaved ? row : hf;  // which side is interleaved
    for (int64_t k = 0; k < qb->cols; ++k) EXPECT_EQ(ob->value[size_t(from * qb->cols + k)], qb->value[size_t(to * qb->cols + k)]);
    EXPECT_EQ(other->B(0, LoraTarget::V)->value, a.B(0, LoraTarget::V)->value);  // v rows are not rotated
  }
}

// Rewrites the adapter's safetensors with f applied to its tensors.
void rewrite(const TempDir& dir, const std::function<void(std::vector<SafetensorsOut>&)>& f) {
  const std::string bytes = read_file(dir / "adapter_model.safetensors");
  std::vector<SafetensorsOut> ts;
  for (const auto& [name, e] : parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x"))
    ts.push_back({name, DType::F32, e.shape, std::vector<uint8_t>(e.data, e.data + e.nbytes)});
  f(ts);
  write_safetensors(dir / "adapter_model.safetensors", ts);
}

TEST(LoraFiles, HostileAdapterFilesAreErrorsNamingTheFileAndTensor) {
  const ModelConfig c = base_config();
  const LoraAdapter a = random_adapter(c);
  const std::string q0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  auto check = [&](const std::function<void(TempDir&)>& corrupt, std::initializer_list<std::string> parts,
                   const ModelConfig& base) {
    TempDir dir;
    save_lora(dir.str(), a, c);
    corrupt(dir);
    expect_error([&] { load_lora(dir.str(), base); }, parts);
  };
  const std::string st = "adapter_model.safetensors";
  check([&](TempDir& d) { rewrite(d, [&](auto& ts) { ts.erase(ts.begin()); }); }, {st, "is missing"}, c);
  check([&](TempDir& d) { rewrite(d, [&](auto& ts) { ts.push_back({"base_model.model.lm_head.lora_A.weight", DType::F32, {4, 16}, std::vector<uint8_t>(256)}); }); },
        {st, "lm_head.lora_A", "not the lora_A/lora_B"}, c);
  check([&](TempDir& d) { rewrite(d, [&](auto& ts) { ts.push_back({"base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", DType::F32, {4, 16}, std::vector<uint8_t>(256)}); }); },
        {st, "layers.7", "layers 0..1"}, c);
  check([&](TempDir& d) { rewrite(d, [&](auto& ts) { ts.push_back({"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight", DType::F32, {4, 16}, std::vector<uint8_t>(256)}); }); },
        {st, "k_proj.lora_A", "target module"}, c);
  check([&](TempDir& d) { rewrite(d, [&](auto& ts) { for (auto& t : ts) if (t.name == q0) t.shape = {16, 4}; }); },
        {st, q0, "shape [16, 4]", "expected [4, 16]"}, c);
  check([&](TempDir& d) { rewrite(d, [&](auto& ts) { for (auto& t : ts) if (t.name == q0) test::set_element(t, 3, NAN); }); },
        {st, q0, "NaN"}, c);
  // The base's shapes, not the adapter's: an adapter for another model is refused by tensor.
  ModelConfig wider = c;
  wider.dim = 32, wider.head_dim = 8;
  check([](TempDir&) {}, {st, "layers.0.mlp.down_proj.lora_B.weight", "expected [32, 4]"}, wider);
  // The rank in the config must be the tensors'.
  check([&](TempDir& d) {
    std::string cfg = read_file(d / "adapter_config.json");
    json j = json::parse(cfg);
    j["r"] = 2;
    spit(d / "adapter_config.json", j.dump());
  }, {st, "down_proj.lora_A.weight", "expected [2, 24]", "r = 2"}, c);
  check([&](TempDir& d) { spit(d / "adapter_model.safetensors", "garbage"); }, {st}, c);
  check([&](TempDir& d) { std::filesystem::remove(d / "adapter_config.json"); }, {"adapter_config.json", "no such file"}, c);
  check([&](TempDir& d) { std::filesystem::remove(d / st); }, {st, "no such file"}, c);
  expect_error([&] { load_lora("/nonexistent/adapter", c); }, {"/nonexistent/adapter", "not a directory"});
}

TEST(LoraFiles, F16AndBf16AdaptersAreWidened) {
  TempDir dir;
  const ModelConfig c = base_config();
  save_lora(dir.str(), random_adapter(c), c);
  rewrite(dir, [](auto& ts) {
    for (auto& t : ts) {
      std::vector<uint8_t> half(t.bytes.size() / 2);
      for (size_t i = 0; i < half.size() / 2; ++i) {
        float v;
        std::memcpy(&v, &t.bytes[i * 4], 4);
        const uint16_t h = f32_to_bf16(v);
        std::memcpy(&half[i * 2], &h, 2);
      }
      t.dtype = DType::BF16, t.bytes = half;
    }
  });
  const auto a = load_lora(dir.str(), c);
  const auto ref = random_adapter(c);
  for (size_t i = 0; i < a->params.params.size(); ++i)
    for (size_t k = 0; k < a->params.params[i].value.size(); ++k)
      EXPECT_NEAR(a->params.params[i].value[k], ref.params.params[i].value[k], 1e-2 * std::fabs(ref.params.params[i].value[k]) + 1e-6);
}

}  // namespace
}  // namespace camelid
