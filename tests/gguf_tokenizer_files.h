#pragma once
// Small GGUF files holding only tokenizer metadata, built in memory for the tests (never copies
// of the fixtures): a SentencePiece-style vocabulary (model "llama") and a byte-level one (model
// "gpt2"), as ordered key/value lists that a test can change, drop or retype key by key.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/gguf.h"
#include "tokenizer/byte_level.h"

namespace camelid::test {

inline gguf::Value gguf_scalar(gguf::ValueType t, int64_t i = 0) {
  gguf::Value v;
  v.type = t;
  v.i = i;
  if (t == gguf::ValueType::U64) v.u = uint64_t(i);
  return v;
}
inline gguf::Value gguf_string(std::string s) {
  gguf::Value v = gguf_scalar(gguf::ValueType::String);
  v.str = std::move(s);
  return v;
}
inline gguf::Value gguf_f32(double f) {
  gguf::Value v = gguf_scalar(gguf::ValueType::F32);
  v.f = f;
  return v;
}
inline gguf::Value gguf_array(gguf::ValueType elem) {
  gguf::Value v = gguf_scalar(gguf::ValueType::Array);
  v.elem = elem;
  return v;
}
inline gguf::Value gguf_strings(std::vector<std::string> s) {
  gguf::Value v = gguf_array(gguf::ValueType::String);
  v.strs = std::move(s);
  return v;
}
inline gguf::Value gguf_f32s(const std::vector<float>& f) {
  gguf::Value v = gguf_array(gguf::ValueType::F32);
  v.floats.assign(f.begin(), f.end());
  return v;
}
inline gguf::Value gguf_ints(const std::vector<int64_t>& i, gguf::ValueType elem = gguf::ValueType::I32) {
  gguf::Value v = gguf_array(elem);
  v.ints = i;
  return v;
}

// Ordered metadata; set() replaces a key in place or appends it.
struct GgufMeta {
  std::vector<std::pair<std::string, gguf::Value>> kv;

  GgufMeta& set(const std::string& key, gguf::Value v) {
    for (auto& [k, old] : kv)
      if (k == key) return old = std::move(v), *this;
    kv.emplace_back(key, std::move(v));
    return *this;
  }
  GgufMeta& erase(const std::string& key) {
    kv.erase(std::remove_if(kv.begin(), kv.end(), [&](auto& p) { return p.first == key; }), kv.end());
    return *this;
  }
  gguf::Value& at(const std::string& key) {
    for (auto& [k, v] : kv)
      if (k == key) return v;
    throw std::out_of_range(key);
  }
  std::string bytes() const {
    gguf::Writer w;
    for (auto& [k, v] : kv) w.add(k, v);
    return w.bytes();
  }
};

// A parsed file with the bytes it points into.
struct GgufBytes {
  std::string bytes;
  std::unique_ptr<gguf::File> file;
  explicit GgufBytes(std::string b, const std::string& source = "tiny.gguf") : bytes(std::move(b)) {
    file = gguf::File::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), source);
  }
};

// Llama 2 style: <unk> <s> </s>, 256 byte pieces, "▁", a few merges by score.
inline GgufMeta tiny_sp_gguf() {
  const std::string sp = "\xE2\x96\x81";
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int64_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name), scores.push_back(0), types.push_back(6);
  }
  const std::pair<std::string, float> pieces[] = {{sp, -1}, {"a", -2}, {"b", -3}, {"ab", -4}, {sp + "a", -5}, {sp + "ab", -6}};
  for (auto& [t, s] : pieces) tokens.push_back(t), scores.push_back(s), types.push_back(1);
  tokens.push_back("<tool>"), scores.push_back(0), types.push_back(4);  // user-defined: always matched
  GgufMeta m;
  m.set("general.architecture", gguf_string("llama"))
      .set("tokenizer.ggml.model", gguf_string("llama"))
      .set("tokenizer.ggml.tokens", gguf_strings(tokens))
      .set("tokenizer.ggml.scores", gguf_f32s(scores))
      .set("tokenizer.ggml.token_type", gguf_ints(types))
      .set("tokenizer.ggml.bos_token_id", gguf_scalar(gguf::ValueType::U32, 1))
      .set("tokenizer.ggml.eos_token_id", gguf_scalar(gguf::ValueType::U32, 2))
      .set("tokenizer.ggml.unknown_token_id", gguf_scalar(gguf::ValueType::U32, 0))
      .set("tokenizer.ggml.add_bos_token", gguf_scalar(gguf::ValueType::Bool, 1))
      .set("tokenizer.ggml.add_eos_token", gguf_scalar(gguf::ValueType::Bool, 0))
      .set("tokenizer.chat_template", gguf_string("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% endfor %}"));
  return m;
}

// Llama 3 style: the 256 byte tokens, "ab" and "Ġa" by merges, <|begin_of_text|> and <|eot_id|>.
inline GgufMeta tiny_byte_level_gguf(const std::string& pre = "llama-bpe") {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level::byte_to_text(uint8_t(b))), types.push_back(1);
  const std::string g = byte_level::byte_to_text(' ');  // "Ġ"
  for (const std::string& t : {std::string("ab"), g + "a", g + "ab"}) tokens.push_back(t), types.push_back(1);
  for (const char* t : {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"}) tokens.push_back(t), types.push_back(3);
  GgufMeta m;
  m.set("general.architecture", gguf_string("llama"))
      .set("tokenizer.ggml.model", gguf_string("gpt2"))
      .set("tokenizer.ggml.pre", gguf_string(pre))
      .set("tokenizer.ggml.tokens", gguf_strings(tokens))
      .set("tokenizer.ggml.token_type", gguf_ints(types))
      .set("tokenizer.ggml.merges", gguf_strings({g + " a", "a b", g + "a b"}))
      .set("tokenizer.ggml.bos_token_id", gguf_scalar(gguf::ValueType::U32, 259))
      .set("tokenizer.ggml.eos_token_id", gguf_scalar(gguf::ValueType::U32, 260))
      .set("tokenizer.ggml.eot_token_id", gguf_scalar(gguf::ValueType::U32, 261))
      .set("tokenizer.ggml.eom_token_id", gguf_scalar(gguf::ValueType::U32, 262));
  return m;
}

}  // namespace camelid::test
