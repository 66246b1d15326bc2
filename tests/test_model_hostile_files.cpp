// Model files from strangers (issue 9): corrupt or tampered safetensors, shard indexes that point
// elsewhere, checkpoints that disagree with their config, NaN/Inf weights, and paths that are not
// regular files. Every case must end in one Error naming the file and the tensor or field.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "model/llama.h"
#include "model/weights.h"
#include "model_files.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

namespace {

// --- safetensors structure: what the reference implementation rejects ---

std::string parse_error(const std::string& file) {
  try {
    parse_safetensors(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "t.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json entry(const char* dtype, std::vector<uint64_t> shape, uint64_t b, uint64_t e) {
  return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {b, e}}};
}

TEST(HostileSafetensors, OverlapsGapsAndTrailingBytes) {
  const std::string data(16, '\0');
  auto parse = [&](const json& h, const std::string& d) { return parse_error(raw_safetensors(h.dump(), d)); };
  // Two 8-byte tensors tiling 16 bytes: fine, in any header order.
  EXPECT_EQ(parse({{"b", entry("F32", {2}, 8, 16)}, {"a", entry("F32", {2}, 0, 8)}}, data), "");
  // Aliasing the same bytes.
  auto e = parse({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 0, 8)}}, std::string(8, '\0'));
  EXPECT_NE(e.find("t.safetensors: tensor 'b'"), std::string::npos) << e;
  EXPECT_NE(e.find("overlap tensor 'a'"), std::string::npos) << e;
  e = parse({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}}, std::string(12, '\0'));
  EXPECT_NE(e.find("overlap"), std::string::npos) << e;
  // A hole between tensors, and a hole before the first one.
  e = parse({{"a", entry("F32", {1}, 0, 4)}, {"b", entry("F32", {2}, 8, 16)}}, data);
  EXPECT_NE(e.find("tensor 'b'"), std::string::npos) << e;
  EXPECT_NE(e.find("gap of 4 bytes after tensor 'a'"), std::string::npos) << e;
  e = parse({{"b", entry("F32", {2}, 8, 16)}}, data);
  EXPECT_NE(e.find("gap of 8 bytes after the header"), std::string::npos) << e;
  // Bytes after the last tensor (a file larger than its header says).
  e = parse({{"a", entry("F32", {2}, 0, 8)}}, data);
  EXPECT_NE(e.find("t.safetensors: the tensors cover 8 of the 16 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("trailing"), std::string::npos) << e;
  // Zero-sized tensors take no bytes, anywhere in the order (as the reference allows).
  EXPECT_EQ(parse({{"z", entry("F32", {0, 5}, 0, 0)}, {"a", entry("F32", {4}, 0, 16)}}, data), "");
  EXPECT_EQ(parse(json::object(), ""), "");
  e = parse(json::object(), "x");
  EXPECT_NE(e.find("trailing"), std::string::npos) << e;
}

TEST(HostileSafetensors, HeaderLengthOffByOne) {
  // A header padded with spaces (as every writer pads it): one byte shorter still parses as
  // JSON, and every tensor would read one byte early. The data section no longer matches.
  const std::string header = json{{"a", entry("F32", {2}, 0, 8)}}.dump() + "   ";
  std::string good = raw_safetensors(header, std::string(8, '\x01'));
  EXPECT_EQ(parse_error(good), "");
  for (int delta : {-1, +1}) {
    std::string bad = good;
    const uint64_t n = header.size() + delta;
    std::memcpy(bad.data(), &n, 8);
    const std::string e = parse_error(bad);
    EXPECT_NE(e.find("t.safetensors"), std::string::npos) << delta << ": " << e;
    EXPECT_NE(e, "") << delta;
  }
  std::string bad = good;
  uint64_t n = header.size() - 1;
  std::memcpy(bad.data(), &n, 8);
  EXPECT_NE(parse_error(bad).find("1 bytes of trailing data"), std::string::npos) << parse_error(bad);
}

TEST(HostileSafetensors, HeaderLimitsAndJson) {
  // The reference's 100 MB header limit, checked before anything is read.
  std::string big(8, '\0');
  uint64_t n = kMaxSafetensorsHeader + 1;
  std::memcpy(big.data(), &n, 8);
  EXPECT_NE(parse_error(big).find("exceeds the safetensors limit of 100000000 bytes"), std::string::npos) << parse_error(big);
  EXPECT_NE(parse_error("").find("truncated"), std::string::npos);
  // Duplicate keys: which one is meant? (serde_json rejects them for the reference.)
  const std::string dup = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  EXPECT_NE(parse_error(raw_safetensors(dup, std::string(4, '\0'))).find("duplicate key \"a\""), std::string::npos)
      << parse_error(raw_safetensors(dup, std::string(4, '\0')));
  EXPECT_NE(parse_error(raw_safetensors(R"( {})", "")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(raw_safetensors(R"({"__metadata__":{"format":1}})", "")).find("__metadata__"), std::string::npos);
  EXPECT_EQ(parse_error(raw_safetensors(R"({"__metadata__":{"format":"pt"}})", "")), "");
  EXPECT_NE(parse_error(raw_safetensors(std::string(200, '[') , "")).find("JSON"), std::string::npos);
  // Shapes whose element count overflows 64 bits, and sub-byte dtypes that do not fill a byte.
  auto e = parse_error(raw_safetensors(json{{"a", entry("F32", {1ull << 32, 1ull << 32, 16}, 0, 0)}}.dump(), ""));
  EXPECT_NE(e.find("tensor 'a': shape is too large"), std::string::npos) << e;
  e = parse_error(raw_safetensors(json{{"a", entry("F4", {3}, 0, 1)}}.dump(), std::string(1, '\0')));
  EXPECT_NE(e.find("whole number of bytes"), std::string::npos) << e;
  e = parse_error(raw_safetensors(json{{"a", entry("F32", {3}, 0, 8)}}.dump(), std::string(8, '\0')));
  EXPECT_NE(e.find("span 8 bytes but shape x dtype needs 12"), std::string::npos) << e;
  e = parse_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""));
  EXPECT_NE(e.find("tensor 'a': shape has an entry"), std::string::npos) << e;
}

// --- checkpoints that disagree with their config ---

// Writes config.json and model.safetensors of spec, after `edit` altered the tensors.
void write_model(const TempDir& d, const RandomModelSpec& spec,
                 const std::function<void(std::vector<SafetensorsOut>&)>& edit = {}) {
  write_random_config(d.str(), spec);
  auto ts = random_model_tensors(spec);
  if (edit) edit(ts);
  write_safetensors(d / "model.safetensors", ts);
}

TEST(HostileCheckpoint, LayersAndNamesMustMatchTheConfig) {
  TempDir d;
  auto three = small_spec();
  three.config.n_layers = 3;
  // A checkpoint with a layer more than its config says.
  write_random_config(d.str(), small_spec());
  write_safetensors(d / "model.safetensors", random_model_tensors(three));
  expect_error([&] { load_model(d.str()); },
               {"model.safetensors: tensor 'model.layers.2.", "belongs to no layer", "num_hidden_layers = 2"});
  // A config with a layer more than its checkpoint has.
  write_random_config(d.str(), three);
  write_safetensors(d / "model.safetensors", random_model_tensors(small_spec()));
  expect_error([&] { load_model(d.str()); }, {"tensor 'model.layers.2.input_layernorm.weight' not found"});
  // A missing tensor.
  write_model(d, small_spec(), [](auto& ts) { std::erase_if(ts, [](auto& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; }); });
  expect_error([&] { load_model(d.str()); }, {"tensor 'model.layers.1.mlp.up_proj.weight' not found"});
  // Tensors of another architecture (a bias changes every output): refused.
  write_model(d, small_spec(), [](auto& ts) {
    ts.push_back({"model.layers.0.self_attn.q_proj.bias", DType::F32, {16}, std::vector<uint8_t>(64)});
  });
  expect_error([&] { load_model(d.str()); }, {"model.safetensors: tensor 'model.layers.0.self_attn.q_proj.bias'", "unexpected tensor"});
  write_model(d, small_spec(), [](auto& ts) { ts.push_back({"model.layers.x.foo", DType::F32, {1}, std::vector<uint8_t>(4)}); });
  expect_error([&] { load_model(d.str()); }, {"'model.layers.x.foo'", "belongs to no layer"});
  // Harmless extras: old transformers' saved RoPE frequencies, a classifier beside tied embeddings.
  write_model(d, small_spec(DType::F32, true), [](auto& ts) {
    ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {2}, std::vector<uint8_t>(8)});
    ts.push_back({"model.rotary_emb.inv_freq", DType::F32, {2}, std::vector<uint8_t>(8)});
    ts.push_back({"lm_head.weight", DType::F32, {32, 16}, std::vector<uint8_t>(32 * 16 * 4)});
  });
  auto w = load_model(d.str());
  EXPECT_EQ(w->lm_head.data, w->embed.data) << "tied: the saved classifier is ignored, as transformers does";
}

TEST(HostileCheckpoint, MisalignedTensorsAreCopied) {
  // Old writers did not pad the header: f32 data may start at any byte. Same values either way.
  TempDir d, dref;  // (rewriting a mapped file would change the reference model under us)
  write_model(dref, small_spec());
  auto ref = load_model(dref.str());
  write_random_config(d.str(), small_spec());
  auto ts = random_model_tensors(small_spec());
  std::string bytes = safetensors_bytes(ts);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = bytes.substr(8, n);
  while (header.back() == ' ') header.pop_back();
  while ((8 + header.size()) % 4 != 1) header += ' ';  // data section at an odd offset
  spit(d / "model.safetensors", raw_safetensors(header, bytes.substr(8 + n)));
  auto w = load_model(d.str());
  for (const Tensor* t : {&w->embed, &w->layers[1].wq, &w->layers[0].w_down, &w->lm_head}) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 4, 0u);
  }
  EXPECT_EQ(std::memcmp(w->layers[1].wq.data, ref->layers[1].wq.data, ref->layers[1].wq.nbytes()), 0);
  EXPECT_EQ(std::memcmp(w->layers[0].attn_norm.data, ref->layers[0].attn_norm.data, 16 * 4), 0);
}

// --- NaN / Inf weights ---

TEST(HostileCheckpoint, NonFiniteWeights) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  TempDir d;
  // In a norm or a matrix every output would be NaN: an error naming file, tensor and place.
  write_model(d, small_spec(DType::BF16), [&](auto& ts) { set_element(*find_tensor(ts, "model.layers.1.post_attention_layernorm.weight"), 5, nan); });
  expect_error([&] { load_model(d.str()); },
               {"model.safetensors: tensor 'model.layers.1.post_attention_layernorm.weight'", "1 NaN/Inf value", "NaN at index 5"});
  write_model(d, small_spec(DType::F16), [&](auto& ts) { set_element(*find_tensor(ts, "model.layers.0.self_attn.q_proj.weight"), 16 * 3 + 2, -inf); });
  expect_error([&] { load_model(d.str()); }, {"tensor 'model.layers.0.self_attn.q_proj.weight'", "Inf at row 3, column 2"});
  write_model(d, small_spec(DType::F32), [&](auto& ts) { set_element(*find_tensor(ts, "lm_head.weight"), 40, nan); });
  expect_error([&] { load_model(d.str()); }, {"tensor 'lm_head.weight'", "NaN at row 2, column 8"});
  write_model(d, small_spec(DType::F32, true), [&](auto& ts) { set_element(*find_tensor(ts, "model.embed_tokens.weight"), 7 * 16, inf); });
  expect_error([&] { load_model(d.str()); }, {"tensor 'model.embed_tokens.weight'", "Inf at row 7"});

  // In an untied embedding only that token is affected: a warning, and the token is refused.
  write_model(d, small_spec(DType::BF16), [&](auto& ts) {
    set_element(*find_tensor(ts, "model.embed_tokens.weight"), 7 * 16 + 3, nan);
    set_element(*find_tensor(ts, "model.embed_tokens.weight"), 9 * 16, inf);
  });
  auto w = std::shared_ptr<ModelWeights>(load_model(d.str()));
  EXPECT_EQ(w->bad_embed_rows, (std::vector<int>{7, 9}));
  ASSERT_EQ(w->warnings.size(), 1u);
  EXPECT_NE(w->warnings[0].find("model.safetensors: tensor 'model.embed_tokens.weight': NaN/Inf in rows 7, 9 (those tokens are refused as input and never predicted)"), std::string::npos)
      << w->warnings[0];
  Llama model(w);
  KVCache cache(w->config, 1, 8);
  std::vector<float> logits;
  Batch b;
  b.add(3, 0, 0, true);
  model.forward(b, cache, logits);
  for (int id = 0; id < int(logits.size()); ++id) {
    if (id == 7 || id == 9)
      EXPECT_EQ(logits[id], -INFINITY) << id;  // never predicted: they could not be fed back
    else
      ASSERT_TRUE(std::isfinite(logits[id])) << id;
  }
  b.clear();
  b.add(9, 1, 0, true);
  expect_error([&] { model.forward(b, cache, logits); }, {"token id 9", "NaN/Inf"});
}

// --- sharded checkpoints ---

TEST(HostileShards, IndexMustMatchTheShards) {
  TempDir d;
  auto spec = small_spec();
  write_random_config(d.str(), spec);
  auto ts = random_model_tensors(spec);
  // Shard 1: the embedding; shard 2: everything else.
  std::vector<SafetensorsOut> a(ts.begin(), ts.begin() + 1), b(ts.begin() + 1, ts.end());
  write_safetensors(d / "model-00001-of-00002.safetensors", a);
  write_safetensors(d / "model-00002-of-00002.safetensors", b);
  json map = json::object();
  for (auto& t : a) map[t.name] = "model-00001-of-00002.safetensors";
  for (auto& t : b) map[t.name] = "model-00002-of-00002.safetensors";
  const std::string index = d / "model.safetensors.index.json";
  auto with_map = [&](const json& m) { spit(index, json{{"metadata", {{"total_size", 1}}}, {"weight_map", m}}.dump()); };
  with_map(map);
  EXPECT_EQ(load_model(d.str())->maps.size(), 2u);

  // Shard names that leave the directory, or are no safetensors file name at all.
  for (const std::string& bad : std::vector<std::string>{"../x.safetensors", "/etc/passwd", "sub/x.safetensors",
                                                         std::string("x\0.safetensors", 14), "..", "", "model.bin",
                                                         "\x1b[2J.safetensors", ".safetensors"}) {
    json m = map;
    m["model.norm.weight"] = bad;
    with_map(m);
    expect_error([&] { load_model(d.str()); }, {"model.safetensors.index.json: weight_map['model.norm.weight']", "is not a file in the directory"});
  }
  json m = map;
  m["model.norm.weight"] = "model-00003-of-00002.safetensors";  // a shard that is not there
  with_map(m);
  expect_error([&] { load_model(d.str()); }, {"model-00003-of-00002.safetensors: cannot open"});
  m = map;
  m["model.norm.weight"] = "model-00001-of-00002.safetensors";  // listed in the wrong shard
  with_map(m);
  expect_error([&] { load_model(d.str()); }, {"index.json: tensor 'model.norm.weight' is listed in model-00001-of-00002.safetensors but found in", "model-00002"});
  m = map;
  m["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";  // listed, absent
  with_map(m);
  expect_error([&] { load_model(d.str()); }, {"tensor 'model.layers.9.mlp.up_proj.weight' is listed in model-00001-of-00002.safetensors, which does not contain it"});
  m = map;
  m.erase("model.norm.weight");  // present, not listed
  with_map(m);
  expect_error([&] { load_model(d.str()); }, {"model-00002-of-00002.safetensors: tensor 'model.norm.weight' is not listed in", "index.json"});
  with_map(json::object());
  expect_error([&] { load_model(d.str()); }, {"index.json: weight_map lists no tensors"});
  spit(index, R"({"weight_map":{"a":"model-00001-of-00002.safetensors","a":"model-00002-of-00002.safetensors"}})");
  expect_error([&] { load_model(d.str()); }, {"index.json", "duplicate key \"a\""});
  // The same tensor in two shards.
  a.push_back(b.back());
  write_safetensors(d / "model-00001-of-00002.safetensors", a);
  with_map(map);
  expect_error([&] { load_model(d.str()); }, {"tensor '" + b.back().name + "' also appears in"});
}

// --- paths that are not regular files ---

TEST(HostilePaths, NotRegularFiles) {
  TempDir d;
  write_model(d, small_spec());
  const std::string st = d / "model.safetensors", cfg = d / "config.json";
  // A FIFO would block open() and read() forever; a device never ends.
  std::filesystem::remove(cfg);
  ASSERT_EQ(::mkfifo(cfg.c_str(), 0600), 0);
  expect_error([&] { load_model(d.str()); }, {"config.json: not a regular file"});
  std::filesystem::remove(cfg);
  std::filesystem::create_symlink("/dev/zero", cfg);
  expect_error([&] { load_model(d.str()); }, {"config.json: not a regular file"});
  std::filesystem::remove(cfg);
  write_random_config(d.str(), small_spec());
  std::filesystem::remove(st);
  ASSERT_EQ(::mkfifo(st.c_str(), 0600), 0);
  expect_error([&] { load_model(d.str()); }, {"model.safetensors: not a regular file"});
  std::filesystem::remove(st);
  std::filesystem::create_directory(st);
  expect_error([&] { load_model(d.str()); }, {"model.safetensors: is a directory"});
  std::filesystem::remove(st);
  spit(st, "");
  expect_error([&] { load_model(d.str()); }, {"model.safetensors: truncated safetensors file (0 bytes"});
  spit(d / "m.bin", "");
  expect_error([&] { load_model(d / "m.bin"); }, {"m.bin: truncated llama2.c checkpoint (0 bytes"});
  ASSERT_EQ(::mkfifo((d / "f.bin").c_str(), 0600), 0);
  expect_error([&] { load_model(d / "f.bin"); }, {"f.bin: not a regular file"});
  // An oversized config.json is not read whole.
  spit(cfg, "{\"a\":\"" + std::string(17 << 20, 'x') + "\"}");
  expect_error([&] { load_model(d.str()); }, {"config.json: larger than the 16777216-byte limit"});
  if (::geteuid() != 0) {  // root reads anything
    write_random_config(d.str(), small_spec());
    ::chmod(cfg.c_str(), 0);
    expect_error([&] { load_model(d.str()); }, {"config.json: cannot open: Permission denied"});
  }
}

TEST(HostilePaths, BareSafetensorsNameMeansTheCurrentDirectory) {
  TempDir d;
  write_model(d, small_spec());
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(d.str());
  std::unique_ptr<ModelWeights> w;
  EXPECT_NO_THROW(w = load_model("model.safetensors"));
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->config.dim, 16);
}

}  // namespace
