// Loaders: every config field honoured, and bad input gives one clear error naming file/field.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fixtures.h"
#include "model_files.h"
#include "model/random_model.h"
#include "model/safetensors.h"
#include "model/weights.h"

using namespace camelid;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using camelid::test::read_json;
using camelid::test::read_file;
using camelid::test::TempDir;
using camelid::test::expect_error;
using camelid::test::spit;

std::string tiny_model(const TempDir& d, DType dt = DType::F32) {
  auto spec = random_model_preset("tiny");
  spec.dtype = dt;
  write_random_model(d.str(), spec);
  return d.str();
}

void write_json(const std::string& path, const json& j) { std::ofstream(path) << j.dump(); }

TEST(Loader, FixtureConfigsAreHonoured) {
  auto l2 = load_model(test::fixture("models/tiny-llama2"));
  EXPECT_EQ(l2->config.vocab_size, 32000);
  EXPECT_EQ(l2->config.n_kv_heads, 4);
  EXPECT_FALSE(l2->config.tied_embeddings);
  EXPECT_NE(l2->lm_head.data, l2->embed.data);
  EXPECT_EQ(l2->maps.size(), 2u) << "sharded: both files mapped";
  EXPECT_EQ(l2->embed.dtype, DType::F32);

  auto l3 = load_model(test::fixture("models/tiny-llama3"));
  const ModelConfig& c = l3->config;
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(l3->lm_head.data, l3->embed.data);
  EXPECT_EQ(l3->embed.dtype, DType::BF16) << "bf16 weights stay bf16 in memory";
  EXPECT_EQ(c.eos_ids, (std::vector<int>{128001, 128008, 128009}));
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  // llama3 scaling: highest frequency untouched, lowest divided by the factor.
  auto f = c.rope_inv_freq();
  EXPECT_FLOAT_EQ(f[0], 1.f);
  EXPECT_NEAR(f.back(), 1.0 / std::pow(500000.0, (c.head_dim - 2.0) / c.head_dim) / 8.0, 1e-9);

  auto s = load_model(test::fixture("models/stories260K/stories260K.bin"));
  EXPECT_EQ(s->config.dim, 64);
  EXPECT_EQ(s->config.hidden_dim, 172);
  EXPECT_EQ(s->config.n_layers, 5);
  EXPECT_EQ(s->config.n_heads, 8);
  EXPECT_EQ(s->config.n_kv_heads, 4);
  EXPECT_EQ(s->config.vocab_size, 512);
  EXPECT_EQ(s->config.max_seq_len, 512);
}

TEST(Loader, LinearRopeScalingAndHeadDim) {
  ModelConfig c;
  c.vocab_size = 10, c.dim = 64, c.hidden_dim = 8, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 1;
  c.head_dim = 32, c.max_seq_len = 16;
  auto base = c.rope_inv_freq();
  c.rope_scaling.type = RopeScaling::Type::Linear;
  c.rope_scaling.factor = 4;
  auto scaled = c.rope_inv_freq();
  ASSERT_EQ(base.size(), 16u);
  for (size_t i = 0; i < base.size(); ++i) EXPECT_FLOAT_EQ(scaled[i], base[i] / 4);

  TempDir d;
  RandomModelSpec spec;
  spec.config = c;  // head_dim (32) != dim / heads (16), MQA (1 kv head)
  write_random_model(d.str(), spec);
  auto w = load_model(d.str());
  EXPECT_EQ(w->config.head_dim, 32);
  EXPECT_EQ(w->layers[0].wq.rows, 128);
  EXPECT_EQ(w->layers[0].wk.rows, 32);
}

TEST(Loader, AllDtypesLoadInPlace) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    TempDir d;
    auto w = load_model(tiny_model(d, dt));
    EXPECT_EQ(w->layers[0].wq.dtype, dt);
    EXPECT_EQ(w->layers[0].attn_norm.dtype, DType::F32) << "norms are widened once";
  }
}

TEST(Loader, MissingPaths) {
  expect_error([] { load_model("/nonexistent/model"); }, {"/nonexistent/model", "no such file"});
  TempDir d;
  expect_error([&] { load_model(d.str()); }, {"config.json"});
  tiny_model(d);
  fs::remove(d / "model.safetensors");
  expect_error([&] { load_model(d.str()); }, {"model.safetensors"});
  expect_error([&] { load_model(d / "x.gguf"); }, {"x.gguf"});
}

TEST(Loader, BadConfigFields) {
  TempDir d;
  tiny_model(d);
  const json good = read_json(d / "config.json");
  auto with = [&](const std::string& key, const json& v) {
    json j = good;
    if (v.is_null()) j.erase(key); else j[key] = v;
    write_json(d / "config.json", j);
  };
  with("architectures", json::array({"MistralForCausalLM"}));
  expect_error([&] { load_model(d.str()); }, {"config.json", "MistralForCausalLM"});
  with("model_type", "gpt2");
  expect_error([&] { load_model(d.str()); }, {"config.json", "gpt2"});
  with("hidden_size", nullptr);
  expect_error([&] { load_model(d.str()); }, {"config.json", "hidden_size"});
  with("num_key_value_heads", 3);
  expect_error([&] { load_model(d.str()); }, {"config.json", "num_key_value_heads"});
  with("hidden_size", "big");
  expect_error([&] { load_model(d.str()); }, {"config.json", "hidden_size"});
  with("rope_scaling", json{{"rope_type", "yarn"}, {"factor", 2}});
  expect_error([&] { load_model(d.str()); }, {"rope_scaling", "yarn"});
  with("hidden_size", 128);  // the weights no longer match the config
  expect_error([&] { load_model(d.str()); }, {"model.safetensors", "model.embed_tokens.weight", "shape"});
  spit(d / "config.json", "{not json");
  expect_error([&] { load_model(d.str()); }, {"config.json", "invalid JSON"});
}

TEST(Loader, CorruptSafetensors) {
  TempDir d;
  tiny_model(d);
  const std::string st = d / "model.safetensors", good = read_file(st);
  uint64_t n;
  std::memcpy(&n, good.data(), 8);
  const std::string header = good.substr(8, n);

  spit(st, good.substr(0, good.size() / 2));  // truncated data
  expect_error([&] { load_model(d.str()); }, {"model.safetensors", "out of range"});
  spit(st, good.substr(0, 5));  // not even a header length
  expect_error([&] { load_model(d.str()); }, {"model.safetensors", "truncated"});
  std::string huge = good;
  uint64_t big = 1ull << 50;
  std::memcpy(huge.data(), &big, 8);
  spit(st, huge);
  expect_error([&] { load_model(d.str()); }, {"model.safetensors", "header length"});

  auto with_header = [&](const std::string& h) {
    std::string s(8, '\0');
    uint64_t len = h.size();
    std::memcpy(s.data(), &len, 8);
    spit(st, s + h + good.substr(8 + n));
  };
  json j = json::parse(header);
  json bad = j;
  bad["model.norm.weight"]["dtype"] = "Q4_K";
  with_header(bad.dump());
  expect_error([&] { load_model(d.str()); }, {"model.norm.weight", "Q4_K"});
  bad = j;
  bad["model.norm.weight"]["dtype"] = "I32";
  with_header(bad.dump());
  expect_error([&] { load_model(d.str()); }, {"model.norm.weight", "unsupported dtype"});
  bad = j;
  bad["model.norm.weight"]["data_offsets"] = {0, 1ull << 40};
  with_header(bad.dump());
  expect_error([&] { load_model(d.str()); }, {"model.norm.weight", "data_offsets"});
  bad = j;
  bad.erase("model.layers.1.mlp.up_proj.weight");  // its bytes are now a gap in the data section
  with_header(bad.dump());
  expect_error([&] { load_model(d.str()); }, {"model.layers.1.mlp.down_proj.weight", "gap"});
  with_header("[1,2,3]");
  expect_error([&] { load_model(d.str()); }, {"model.safetensors", "not a JSON object"});
  with_header("{\"a\":");
  expect_error([&] { load_model(d.str()); }, {"model.safetensors", "JSON"});
}

TEST(Loader, ShardIndexErrors) {
  TempDir d;
  tiny_model(d);
  write_json(d / "model.safetensors.index.json", json{{"weight_map", {{"model.norm.weight", "missing.safetensors"}}}});
  expect_error([&] { load_model(d.str()); }, {"missing.safetensors", "cannot open"});
  write_json(d / "model.safetensors.index.json", json{{"weight_map", {{"model.norm.weight", "../../etc/passwd"}}}});
  expect_error([&] { load_model(d.str()); }, {"index.json", "not a file in the directory"});
  write_json(d / "model.safetensors.index.json", json{{"nothing", 1}});
  expect_error([&] { load_model(d.str()); }, {"index.json", "weight_map"});
}

TEST(Loader, CorruptLlama2c) {
  TempDir d;
  const std::string good = read_file(test::fixture("models/stories260K/stories260K.bin"));
  spit(d / "m.bin", good.substr(0, good.size() - 100));
  expect_error([&] { load_model(d / "m.bin"); }, {"m.bin", "truncated"});
  spit(d / "m.bin", good.substr(0, 10));
  expect_error([&] { load_model(d / "m.bin"); }, {"m.bin", "header"});
  std::string bad = good;
  int32_t zero = 0;
  std::memcpy(bad.data() + 12, &zero, 4);
  spit(d / "m.bin", bad);
  expect_error([&] { load_model(d / "m.bin"); }, {"m.bin", "n_heads"});
}

}  // namespace
