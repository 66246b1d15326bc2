// Hostile numbers (issue 9): config.json fields and llama2.c headers that are each plausible but
// whose products overflow or ask for absurd memory, and what the runtime sizes from them.
#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <limits>

#include "core/checked_size.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "model_files.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

namespace {

TEST(CheckedSize, OverflowIsSticky) {
  CheckedSize a = CheckedSize(1ull << 40) * (1ull << 20);
  EXPECT_FALSE(a.overflowed());
  EXPECT_EQ(a.value(), 1ull << 60);
  EXPECT_TRUE((a * 16).overflowed());
  EXPECT_TRUE((a * 16 + 1).overflowed()) << "an overflow is never forgotten";
  EXPECT_TRUE((CheckedSize(UINT64_MAX) + 1).overflowed());
  EXPECT_TRUE(CheckedSize(-1).overflowed()) << "a negative size is no size";
  EXPECT_TRUE(CheckedSize(7).fits(7));
  EXPECT_FALSE(CheckedSize(8).fits(7));
  EXPECT_FALSE((CheckedSize(1ull << 63) * 2).fits(UINT64_MAX));
}

// --- config.json ---

json good_config() {
  json j = small_spec().config.to_json();
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  return j;
}

std::string config_error(const json& j) {
  try {
    parse_hf_config(j.dump(), "cfg/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json with(json j, const std::string& key, const json& v) {
  j[key] = v;
  return j;
}

TEST(HostileConfig, SizeFieldsAreBounded) {
  EXPECT_EQ(config_error(good_config()), "");
  // The case: head_dim 2^30 + 16 made n_heads * head_dim wrap to a "matching" 64.
  auto e = config_error(with(good_config(), "head_dim", (1 << 30) + 16));
  EXPECT_NE(e.find("cfg/config.json: head_dim = 1073741840 is out of range (1..4096)"), std::string::npos) << e;
  const std::pair<const char*, long long> over[] = {
      {"vocab_size", (1 << 22) + 1},          {"hidden_size", (1 << 17) + 1}, {"intermediate_size", (1 << 20) + 1},
      {"num_hidden_layers", 4097},            {"num_key_value_heads", 4097},  {"max_position_embeddings", (1 << 24) + 1},
      {"hidden_size", 0},                     {"num_hidden_layers", -1},      {"vocab_size", 1ll << 31},
      {"max_position_embeddings", 1ll << 40}};
  for (auto& [key, v] : over) {
    e = config_error(with(good_config(), key, v));
    EXPECT_NE(e.find(std::string("cfg/config.json: ")), std::string::npos) << key << ": " << e;
    EXPECT_NE(e.find(key), std::string::npos) << key << ": " << e;
    EXPECT_NE(e.find("out of range"), std::string::npos) << key << ": " << e;
  }
  e = config_error(with(good_config(), "vocab_size", json::parse("18446744073709551615")));
  EXPECT_NE(e.find("'vocab_size' = 18446744073709551615 is out of range"), std::string::npos) << e;
  json j = good_config();
  j["num_attention_heads"] = 4096, j["num_key_value_heads"] = 4096, j["head_dim"] = 4096;
  e = config_error(j);
  EXPECT_NE(e.find("num_attention_heads x head_dim = 16777216 is out of range (1..1048576)"), std::string::npos) << e;
  j = good_config();
  j["num_attention_heads"] = 4, j["num_key_value_heads"] = 3;
  EXPECT_NE(config_error(j).find("not a multiple of num_key_value_heads (3)"), std::string::npos);
  // The largest real shapes still load: Llama 3.1 405B with a 128K context.
  j = good_config();
  j["vocab_size"] = 128256, j["hidden_size"] = 16384, j["intermediate_size"] = 53248, j["num_hidden_layers"] = 126;
  j["num_attention_heads"] = 128, j["num_key_value_heads"] = 8, j["head_dim"] = 128, j["max_position_embeddings"] = 131072;
  EXPECT_EQ(config_error(j), "");
}

TEST(HostileConfig, TypesNumbersAndJson) {
  const std::pair<json, std::string> cases[] = {
      {with(good_config(), "tie_word_embeddings", "yes"), "field 'tie_word_embeddings' must be true or false"},
      {with(good_config(), "model_type", 5), "field 'model_type' must be a string"},
      {with(good_config(), "hidden_act", json::array()), "field 'hidden_act' must be a string"},
      {with(good_config(), "attention_bias", "no"), "field 'attention_bias' must be true or false"},
      {with(good_config(), "hidden_size", 16.5), "field 'hidden_size' must be an integer"},
      {with(good_config(), "eos_token_id", 4294967297ll), "field 'eos_token_id' must be a token id"},
      {with(good_config(), "eos_token_id", json::array({2, -1})), "field 'eos_token_id' must be a token id"},
      {with(good_config(), "bos_token_id", 32), "bos_token_id 32 >= vocab_size 32"},
      {with(good_config(), "rope_theta", 0), "rope_theta must be a finite number > 0"},
      {with(good_config(), "rope_theta", -1.0), "rope_theta must be a finite number > 0"},
      {with(good_config(), "rms_norm_eps", 0.0), "rms_norm_eps must be a finite number > 0"},
      {with(good_config(), "rope_scaling", "x"), "field 'rope_scaling' must be an object"},
      {with(good_config(), "rope_scaling", {{"rope_type", 5}}), "field 'rope_type' must be a string"},
      {with(good_config(), "rope_scaling", {{"rope_type", "linear"}, {"factor", -2}}), "rope_scaling.factor must be a number in [1e-6, 1e6], got -2"},
      {with(good_config(), "rope_scaling", {{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 0}}),
       "low_freq_factor/high_freq_factor must be finite numbers > 0"},
      {with(good_config(), "rope_scaling", {{"rope_type", "llama3"}, {"factor", 8}, {"original_max_position_embeddings", 0}}),
       "rope_scaling.original_max_position_embeddings = 0 is out of range"},
      {json::array(), "expected a JSON object"},
  };
  for (auto& [j, want] : cases) {
    const std::string e = config_error(j);
    EXPECT_NE(e.find("cfg/config.json"), std::string::npos) << want << ": " << e;
    EXPECT_NE(e.find(want), std::string::npos) << want << ": " << e;
  }
  // Text refused by the JSON reader: a duplicate key, 1e400 (infinite), deep nesting.
  auto text_error = [](const std::string& text) {
    try {
      parse_hf_config(text, "cfg/config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string dup = good_config().dump();
  dup.insert(1, "\"hidden_size\":8,");
  EXPECT_NE(text_error(dup).find("cfg/config.json: duplicate key \"hidden_size\""), std::string::npos) << text_error(dup);
  std::string inf = good_config().dump();
  inf.insert(1, "\"rope_theta\":1e400,");
  EXPECT_NE(text_error(inf).find("cfg/config.json"), std::string::npos) << text_error(inf);
  EXPECT_NE(text_error(inf).find("number overflow"), std::string::npos) << text_error(inf);
  EXPECT_NE(text_error(std::string(100000, '[')).find("nested deeper"), std::string::npos);
}

TEST(HostileConfig, KvCacheIsBoundedByMemory) {
  // A model of 4096 layers x 2^20 keys per position (its weights can be small: dim 2) asked for
  // the whole of a 16M-token max_position_embeddings: refused clearly, not zero-filled to death.
  ModelConfig c = small_spec().config;
  c.n_layers = 4096, c.n_kv_heads = 256, c.head_dim = 4096;
  expect_error([&] { KVCache(c, 1, 1 << 24); }, {"KV cache: 1 sequence(s) x 16777216 positions x 4096 layers", "MiB of memory", "--ctx"});
  expect_error([&] { KVCache(c, INT_MAX, INT_MAX); }, {"KV cache", "more than 2^64"});
  KVCache ok(small_spec().config, 2, 64);
  EXPECT_EQ(ok.budget_bytes(), 2u * 2 * 64 * 2 * 8 * 4);
  EXPECT_EQ(ok.bytes(), 0u) << "blocks are allocated when positions are stored";
}

// --- llama2.c ---

using Header = std::array<int32_t, 7>;  // dim, hidden, layers, heads, kv heads, vocab, seq_len

// Floats the legacy llama2.c format stores after the header (small headers only).
size_t llama2c_floats(const Header& h) {
  const size_t D = h[0], H = h[1], L = h[2], V = size_t(std::abs(h[5])), S = h[6];
  const size_t hs = D / h[3], KV = size_t(h[4]) * hs;
  return V * D + L * D + L * D * D + 2 * L * D * KV + L * D * D + L * D + 3 * L * D * H + D + S * hs +
         (h[5] < 0 ? V * D : 0);
}

// A checkpoint with header h, small finite weights, and `extra` bytes more (or fewer) than it implies.
std::string llama2c_file(const Header& h, long extra = 0) {
  std::string s(28, '\0');
  std::memcpy(s.data(), h.data(), 28);
  const size_t n = llama2c_floats(h);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.01f * float(int(i % 13) - 6);
  s.append(reinterpret_cast<const char*>(v.data()), n * 4);
  if (extra > 0) s.append(size_t(extra), '\0');
  if (extra < 0) s.erase(s.size() - std::min(s.size(), size_t(-extra)));  // erase: GCC 12 warns on resize
  return s;
}

void set_float(std::string& file, size_t index, float v) { std::memcpy(file.data() + 28 + index * 4, &v, 4); }

const Header kSmall = {16, 24, 2, 4, 2, 32, 8};

std::string load_error(const std::string& bytes) {
  TempDir d;
  spit(d / "m.bin", bytes);
  try {
    load_model(d / "m.bin");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HostileLlama2c, HeaderFields) {
  EXPECT_EQ(load_error(llama2c_file(kSmall)), "");
  Header untied = kSmall;
  untied[5] = -32;
  EXPECT_EQ(load_error(llama2c_file(untied)), "");
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    for (int32_t v : {0, -5, INT32_MIN, INT32_MAX, (1 << 24) + 1}) {
      if (i == 5 && v == -5) continue;  // a valid untied vocabulary
      Header h = kSmall;
      h[i] = v;
      std::string bytes(28, '\0');
      std::memcpy(bytes.data(), h.data(), 28);
      const std::string e = load_error(bytes + std::string(4096, '\0'));
      EXPECT_NE(e.find("m.bin: header field " + std::string(names[i]) + " = " + std::to_string(v) + " is invalid"),
                std::string::npos) << e;
    }
  auto e = load_error(llama2c_file({16, 24, 2, 4, 3, 32, 8}));
  EXPECT_NE(e.find("m.bin: n_heads 4 is not a multiple of n_kv_heads 3"), std::string::npos) << e;
  e = load_error(llama2c_file({18, 24, 2, 4, 2, 32, 8}).substr(0, 28) + std::string(64, '\0'));
  EXPECT_NE(e.find("m.bin: dim 18 is not a multiple of n_heads 4"), std::string::npos) << e;
  e = load_error(llama2c_file({12, 24, 2, 4, 2, 32, 8}));
  EXPECT_NE(e.find("must be even"), std::string::npos) << e;
  std::string ak42 = llama2c_file(kSmall);
  std::memcpy(ak42.data(), "24ka", 4);  // 0x616b3432 little-endian
  EXPECT_NE(load_error(ak42).find("magic 'ak42'"), std::string::npos) << load_error(ak42);
}

TEST(HostileLlama2c, ImpliedSizeMustBeTheFileSize) {
  // Each field within its range, the implied size enormous: refused before any use of the data.
  // (Before this, fields up to 2^24 each let the size computation wrap and pass, then segfault.)
  const Header huge = {1 << 17, 1 << 20, 4096, 4096, 4096, 1 << 22, 1 << 24};
  std::string bytes(28, '\0');
  std::memcpy(bytes.data(), huge.data(), 28);
  auto e = load_error(bytes + std::string(1 << 16, '\0'));
  EXPECT_NE(e.find("m.bin: file has 65564 bytes but the header implies"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  e = load_error(llama2c_file(kSmall, -1));
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  e = load_error(llama2c_file(kSmall, 1));
  EXPECT_NE(e.find("1 bytes of trailing data"), std::string::npos) << e;
  e = load_error(llama2c_file(kSmall, 4096));
  EXPECT_NE(e.find("4096 bytes of trailing data"), std::string::npos) << e;
  // The in-memory entry point wants the alignment a map gives.
  const std::string ok = llama2c_file(kSmall);
  std::vector<uint32_t> buf(ok.size() / 4 + 2);
  auto* p = reinterpret_cast<uint8_t*>(buf.data()) + 1;
  std::memcpy(p, ok.data(), ok.size());
  expect_error([&] { load_llama2c_memory(p, ok.size(), "mem.bin"); }, {"mem.bin", "aligned"});
}

TEST(HostileLlama2c, NonFiniteWeights) {
  const size_t D = 16, V = 32, L = 2;
  std::string f = llama2c_file(kSmall);
  set_float(f, V * D + L * D + 5, std::numeric_limits<float>::quiet_NaN());  // layer 0 wq, row 0
  auto e = load_error(f);
  EXPECT_NE(e.find("m.bin: layer 0 wq: 1 NaN/Inf value (first: NaN at row 0, column 5)"), std::string::npos) << e;
  f = llama2c_file(kSmall);
  set_float(f, 3 * D + 1, std::numeric_limits<float>::infinity());  // tied embedding row 3
  e = load_error(f);
  EXPECT_NE(e.find("m.bin: token embedding (also the classifier)"), std::string::npos) << e;
  Header untied = kSmall;
  untied[5] = -32;
  f = llama2c_file(untied);
  set_float(f, 3 * D + 1, std::numeric_limits<float>::infinity());
  TempDir d;
  spit(d / "m.bin", f);
  auto w = load_model(d / "m.bin");
  EXPECT_EQ(w->bad_embed_rows, std::vector<int>{3});
  ASSERT_EQ(w->warnings.size(), 1u);
  EXPECT_NE(w->warnings[0].find("m.bin: token embedding: NaN/Inf in row 3 (those tokens are refused as input and never predicted)"), std::string::npos) << w->warnings[0];
}

}  // namespace
