// The GGUF model loader on small files the test writes: what a correct file gives, and one clear
// error per defect (architecture, hyperparameters, missing/extra/misshapen tensors, types camelid
// cannot run, NaN/Inf), plus recognition by content whatever the file is called.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "core/error.h"
#include "core/gguf.h"
#include "model/llama.h"

using namespace camelid;
namespace fs = std::filesystem;

namespace {

struct Spec {
  int dim = 32, hidden = 64, vocab = 16, layers = 2, heads = 4, kv_heads = 2;
  bool tied = false, rope_freqs = false;
  std::map<std::string, uint32_t> keys;  // u32 keys written instead of (or besides) the ones above
};

std::vector<uint8_t> f32_bytes(size_t n, uint32_t seed, float scale = 0.3f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<uint8_t> out(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const float v = u(rng);
    std::memcpy(&out[i * 4], &v, 4);
  }
  return out;
}

// A tiny Llama in GGUF layout, f32 weights; `edit` may change the writer before it is written.
std::string model_bytes(const Spec& s, const std::function<void(gguf::Writer&)>& edit = {}) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  std::map<std::string, uint32_t> keys = {
      {"llama.context_length", 64}, {"llama.embedding_length", s.dim}, {"llama.block_count", s.layers},
      {"llama.feed_forward_length", s.hidden}, {"llama.attention.head_count", s.heads},
      {"llama.attention.head_count_kv", s.kv_heads}, {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.eos_token_id", 2}};
  for (auto& [k, v] : s.keys) keys[k] = v;
  for (auto& [k, v] : keys) w.add_u32(k, v);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_f32("llama.rope.freq_base", 10000.f);
  const int hd = s.dim / s.heads, kv = s.kv_heads * hd;
  uint32_t seed = 1;
  auto mat = [&](const std::string& name, int rows, int cols) {
    w.add_tensor(name, DType::F32, {cols, rows}, f32_bytes(size_t(rows) * cols, seed++));
  };
  auto norm = [&](const std::string& name) {
    std::vector<float> ones(size_t(s.dim), 1.f);
    std::vector<uint8_t> b(ones.size() * 4);
    std::memcpy(b.data(), ones.data(), b.size());
    w.add_tensor(name, DType::F32, {s.dim}, b);
  };
  mat("token_embd.weight", s.vocab, s.dim);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    mat(p + "attn_q.weight", s.dim, s.dim);
    mat(p + "attn_k.weight", kv, s.dim);
    mat(p + "attn_v.weight", kv, s.dim);
    mat(p + "attn_output.weight", s.dim, s.dim);
    norm(p + "ffn_norm.weight");
    mat(p + "ffn_gate.weight", s.hidden, s.dim);
    mat(p + "ffn_up.weight", s.hidden, s.dim);
    mat(p + "ffn_down.weight", s.dim, s.hidden);
  }
  norm("output_norm.weight");
  if (!s.tied) mat("output.weight", s.vocab, s.dim);
  if (s.rope_freqs) {
    std::vector<uint8_t> b(size_t(hd / 2) * 4);
    for (int i = 0; i < hd / 2; ++i) {
      const float v = 1.f + float(i);
      std::memcpy(&b[size_t(i) * 4], &v, 4);
    }
    w.add_tensor("rope_freqs.weight", DType::F32, {hd / 2}, b);
  }
  if (edit) edit(w);
  return w.bytes();
}

// The weights are views into the bytes: those of every loaded file stay alive to the end.
std::unique_ptr<ModelWeights> load(const std::string& bytes) {
  static std::deque<std::string> keep;
  keep.push_back(bytes);
  return load_gguf_memory(reinterpret_cast<const uint8_t*>(keep.back().data()), keep.back().size(), "m.gguf");
}

void expect_load_error(const std::string& bytes, const std::string& what) {
  try {
    load(bytes);
    ADD_FAILURE() << "loaded, expected an error containing '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

// Bytes of a file with one tensor's data replaced (same size) by `edit`.
std::string with_tensor(const std::string& bytes, const std::string& name, const std::function<void(uint8_t*, size_t)>& edit) {
  auto f = gguf::File::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m.gguf");
  const gguf::TensorInfo* t = f->tensor(name);
  std::string out = bytes;
  edit(reinterpret_cast<uint8_t*>(out.data()) + f->data_offset() + t->offset, t->nbytes);
  return out;
}

std::vector<float> logits_of(const ModelWeights& w, int token) {
  Llama m(std::make_shared<ModelWeights>(std::move(const_cast<ModelWeights&>(w))));
  KVCache cache(m.config(), 1, 4);
  Batch b;
  b.add(token, 0, 0, true);
  std::vector<float> out;
  m.forward(b, cache, out);
  return out;
}

}  // namespace

TEST(ModelGguf, ReadsHyperparametersAndTensors) {
  Spec s;
  s.rope_freqs = true;
  auto w = load(model_bytes(s));
  const ModelConfig& c = w->config;
  EXPECT_EQ(w->format, "gguf");
  EXPECT_EQ(c.dim, 32);
  EXPECT_EQ(c.hidden_dim, 64);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 16);
  EXPECT_EQ(c.max_seq_len, 64);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_ids, std::vector<int>{2});
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_TRUE(c.rope_interleaved);
  ASSERT_EQ(c.rope_freq_factors.size(), 4u);
  EXPECT_EQ(c.rope_freq_factors[3], 4.f);
  // Each divides its pair's inverse frequency.
  ModelConfig plain = c;
  plain.rope_freq_factors.clear();
  EXPECT_FLOAT_EQ(c.rope_inv_freq()[3], plain.rope_inv_freq()[3] / 4.f);
  EXPECT_EQ(w->layers.size(), 2u);
  EXPECT_EQ(w->layers[1].w_down.rows, 32);
  EXPECT_EQ(w->layers[1].w_down.cols, 64);

  s.tied = true;
  auto tied = load(model_bytes(s));
  EXPECT_TRUE(tied->config.tied_embeddings);
  EXPECT_EQ(tied->lm_head.data, tied->embed.data);
  const auto lg = logits_of(*tied, 3);
  ASSERT_EQ(lg.size(), 16u);
  for (float v : lg) EXPECT_TRUE(std::isfinite(v));
}

TEST(ModelGguf, RecognisedByContentWhateverItsName) {
  const std::string dir = fs::temp_directory_path() / ("camelid-gguf-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string blob = dir + "/sha256-0123abcd";  // how ollama stores a model
  std::ofstream(blob, std::ios::binary) << model_bytes(Spec{});
  EXPECT_EQ(load_model(blob)->format, "gguf");
  std::ofstream(dir + "/fake.gguf") << "not a gguf file at all";
  try {
    load_model(dir + "/fake.gguf");
    ADD_FAILURE() << "loaded a file without the GGUF magic";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

Spec with_key(const std::string& k, uint32_t v) {
  Spec s;
  s.keys[k] = v;
  return s;
}

TEST(ModelGguf, OneClearErrorPerDefect) {
  const Spec s;
  expect_load_error(model_bytes(s, [](gguf::Writer& w) { w = gguf::Writer(); w.add_string("general.architecture", "gpt2"); }),
               "general.architecture = 'gpt2' is not supported");
  expect_load_error(model_bytes(with_key("llama.block_count", 0)), "'llama.block_count' = 0 is out of range");
  expect_load_error(model_bytes(with_key("llama.embedding_length", 1u << 30)), "'llama.embedding_length' = 1073741824 is out of range");
  // Hyperparameters that disagree with the tensors.
  expect_load_error(model_bytes(with_key("llama.block_count", 3)), "tensor 'blk.2.attn_norm.weight' is missing");
  expect_load_error(model_bytes(with_key("llama.block_count", 1)), "unexpected tensor 'blk.1.");
  expect_load_error(model_bytes(with_key("llama.feed_forward_length", 48)),
               "tensor 'blk.0.ffn_gate.weight': dimensions [32, 64] do not match the model's hyperparameters (expected [32, 48])");
  expect_load_error(model_bytes(with_key("llama.attention.head_count_kv", 4)), "tensor 'blk.0.attn_k.weight': dimensions");
  expect_load_error(model_bytes(with_key("llama.attention.head_count_kv", 3)), "");  // heads that do not group
  expect_load_error(model_bytes(with_key("llama.vocab_size", 17)), "llama.vocab_size = 17 but token_embd.weight has 16 rows");
  expect_load_error(model_bytes(with_key("llama.rope.dimension_count", 4)), "partial RoPE");
  expect_load_error(model_bytes(with_key("tokenizer.ggml.eot_token_id", 99)), "'tokenizer.ggml.eot_token_id' = 99 is out of range");
  expect_load_error(model_bytes(s, [](gguf::Writer& w) { w.add_string("llama.rope.scaling.type", "yarn"); }),
               "rope.scaling.type = 'yarn' is not supported");
  expect_load_error(model_bytes(s, [](gguf::Writer& w) { w.add_string("llama.attention.key_length", "8"); }),
               "'llama.attention.key_length' must be an integer, not string");
  Spec rf = s;
  rf.rope_freqs = true;
  expect_load_error(with_tensor(model_bytes(rf), "rope_freqs.weight", [](uint8_t* p, size_t) { std::memset(p, 0, 4); }),
               "rope_freqs.weight[0] = 0");
  expect_load_error(model_bytes(s, [](gguf::Writer& w) {
                 w.add_tensor("blk.0.attn_q.bias", DType::F32, {32}, std::vector<uint8_t>(128, 0));
               }),
               "unexpected tensor 'blk.0.attn_q.bias'");
}

TEST(ModelGguf, TypesCamelidCannotRunAreNamed) {
  Spec s;
  // Rewrite attn_q of layer 0 as iq2_xxs (66 bytes per 256 elements: a 256-wide model).
  s.dim = 256;
  s.heads = 4;
  s.kv_heads = 2;
  s.hidden = 256;
  std::string b = model_bytes(s);
  auto f = gguf::File::parse(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "m.gguf");
  // The tensor info's type field follows the name, n_dims and dims: find it by name.
  const std::string name = "blk.0.attn_q.weight";
  const size_t at = b.find(name) + name.size() + 4 + 2 * 8;
  const uint32_t iq2_xxs = 16;
  std::memcpy(b.data() + at, &iq2_xxs, 4);
  expect_load_error(b, "tensor 'blk.0.attn_q.weight': tensor type iq2_xxs is not supported");
}

TEST(ModelGguf, NonFiniteWeights) {
  Spec s;
  const float nan = std::nanf("");
  auto poison = [&](uint8_t* p, size_t) { std::memcpy(p + 4 * 37, &nan, 4); };
  expect_load_error(with_tensor(model_bytes(s), "blk.1.ffn_up.weight", poison), "blk.1.ffn_up.weight");
  // In an untied embedding: a warning, that token refused, never predicted.
  auto w = load(with_tensor(model_bytes(s), "token_embd.weight", poison));  // row 37 / 32 = 1
  ASSERT_EQ(w->bad_embed_rows, std::vector<int>{1});
  EXPECT_EQ(w->warnings.size(), 1u);
  auto shared = std::shared_ptr<const ModelWeights>(std::move(w));
  Llama m(shared);
  EXPECT_THROW(m.check_token(1), Error);
  // Tied: the classifier would spread it: refused.
  s.tied = true;
  expect_load_error(with_tensor(model_bytes(s), "token_embd.weight", poison), "token_embd.weight");
}
