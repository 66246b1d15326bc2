// Tokenizer metadata from a stranger's GGUF file: every defect (mismatched array lengths, ids out
// of range, wrong value types, unknown model or pre-tokenizer, merges naming unknown tokens, an
// empty vocabulary, ...) is one clean Error naming the file and the key, never a crash or a
// tokenizer that silently differs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/gguf.h"
#include "gguf_tokenizer_files.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace camelid {
namespace {

using gguf::ValueType;
using test::GgufMeta;

// Builds the spec and the tokenizer; expects an Error naming the file and containing `what`.
void expect_error(const GgufMeta& m, const std::string& what, const std::string& what2 = "") {
  SCOPED_TRACE(what + " " + what2);
  try {
    test::GgufBytes g(m.bytes());
    Tokenizer tok(tokenizer_spec_from_gguf(*g.file));
    ADD_FAILURE() << "built a tokenizer, expected an error containing '" << what << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tiny.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    if (!what2.empty()) {
      EXPECT_NE(msg.find(what2), std::string::npos) << msg;
    }
  }
}

GgufMeta sp() { return test::tiny_sp_gguf(); }
GgufMeta bl() { return test::tiny_byte_level_gguf(); }

TEST(TokenizerGgufHostile, TheBaseFilesAreValid) {
  for (const GgufMeta& m : {sp(), bl()}) {
    test::GgufBytes g(m.bytes());
    EXPECT_NO_THROW(Tokenizer(tokenizer_spec_from_gguf(*g.file)));
  }
}

TEST(TokenizerGgufHostile, MismatchedArrayLengths) {
  GgufMeta m = sp();
  m.at("tokenizer.ggml.scores").floats.pop_back();
  expect_error(m, "tokenizer.ggml.scores", "entries");
  m = sp();
  m.at("tokenizer.ggml.scores").floats.push_back(0);
  expect_error(m, "tokenizer.ggml.scores", "entries");
  m = sp();
  m.at("tokenizer.ggml.token_type").ints.push_back(1);
  expect_error(m, "tokenizer.ggml.token_type", "entries");
  m = bl();
  m.at("tokenizer.ggml.token_type").ints.pop_back();
  expect_error(m, "tokenizer.ggml.token_type", "entries");
  m = bl();
  m.set("tokenizer.ggml.scores", test::gguf_f32s({0, 1}));
  expect_error(m, "tokenizer.ggml.scores", "entries");
}

TEST(TokenizerGgufHostile, IdsOutOfRange) {
  const char* keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
  const std::pair<ValueType, int64_t> values[] = {
      {ValueType::I32, -1},          {ValueType::I32, INT32_MAX},      {ValueType::U32, 1000000000},
      {ValueType::U32, 266},         {ValueType::I64, INT64_MIN},      {ValueType::I16, -32768},
      {ValueType::U32, UINT32_MAX},
  };
  for (const char* key : keys) {
    for (auto [type, v] : values) {
      for (GgufMeta m : {sp(), bl()}) {
        m.set(key, test::gguf_scalar(type, v));
        expect_error(m, key);
        test::GgufBytes g(m.bytes());
        const std::string k = key;
        if (k == "tokenizer.ggml.eos_token_id" || k == "tokenizer.ggml.eot_token_id" || k == "tokenizer.ggml.eom_token_id") {
          EXPECT_THROW(end_of_turn_ids_from_gguf(*g.file), Error) << key;
        }
      }
    }
    GgufMeta m = sp();
    gguf::Value big = test::gguf_scalar(ValueType::U64);
    big.u = (uint64_t(1) << 63) + 5;
    m.set(key, big);
    expect_error(m, key);
  }
}

TEST(TokenizerGgufHostile, WrongValueTypes) {
  using test::gguf_f32;
  using test::gguf_scalar;
  using test::gguf_string;
  struct Bad {
    const char* key;
    gguf::Value value;
  };
  const Bad sp_cases[] = {
      {"tokenizer.ggml.model", gguf_scalar(ValueType::U32, 1)},
      {"tokenizer.ggml.tokens", gguf_f32(1)},
      {"tokenizer.ggml.tokens", test::gguf_ints({1, 2, 3})},
      {"tokenizer.ggml.tokens", gguf_string("<unk>")},
      {"tokenizer.ggml.scores", test::gguf_strings({"a"})},
      {"tokenizer.ggml.scores", gguf_f32(0)},
      {"tokenizer.ggml.token_type", test::gguf_f32s({1, 1})},
      {"tokenizer.ggml.token_type", gguf_scalar(ValueType::I32, 1)},
      {"tokenizer.ggml.bos_token_id", gguf_string("1")},
      {"tokenizer.ggml.bos_token_id", gguf_scalar(ValueType::Bool, 1)},
      {"tokenizer.ggml.eos_token_id", gguf_f32(2)},
      {"tokenizer.ggml.add_bos_token", gguf_scalar(ValueType::U32, 1)},
      {"tokenizer.ggml.add_eos_token", gguf_string("true")},
      {"tokenizer.ggml.add_space_prefix", gguf_scalar(ValueType::I8, 1)},
  };
  for (const Bad& b : sp_cases) {
    GgufMeta m = sp();
    m.set(b.key, b.value);
    expect_error(m, b.key);
  }
  // Nested arrays where a flat one belongs.
  GgufMeta m = sp();
  gguf::Value nested = test::gguf_array(ValueType::Array);
  nested.arrays = {test::gguf_strings({"a"}), test::gguf_strings({"b"})};
  m.set("tokenizer.ggml.tokens", nested);
  expect_error(m, "tokenizer.ggml.tokens");

  const Bad bl_cases[] = {
      {"tokenizer.ggml.pre", gguf_scalar(ValueType::I32, 3)},
      {"tokenizer.ggml.merges", test::gguf_ints({1, 2})},
      {"tokenizer.ggml.merges", gguf_string("a b")},
  };
  for (const Bad& b : bl_cases) {
    m = bl();
    m.set(b.key, b.value);
    expect_error(m, b.key);
  }
  m = bl();
  m.set("tokenizer.chat_template", gguf_scalar(ValueType::U32, 7));
  test::GgufBytes g(m.bytes());
  try {
    chat_template_from_gguf(*g.file);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.chat_template"), std::string::npos) << e.what();
  }
}

TEST(TokenizerGgufHostile, UnknownModelOrPreTokenizer) {
  for (const char* model : {"bert", "t5", "", "LLAMA", "gpt2 "}) {
    GgufMeta m = sp();
    m.set("tokenizer.ggml.model", test::gguf_string(model));
    expect_error(m, "tokenizer.ggml.model", "not supported");
  }
  for (const char* pre : {"qwen2", "", "llama-bpe\n", "deepseek-llm"}) {
    GgufMeta m = bl();
    m.set("tokenizer.ggml.pre", test::gguf_string(pre));
    expect_error(m, "tokenizer.ggml.pre", "'llama-bpe'");  // names the supported ones
  }
}

TEST(TokenizerGgufHostile, MergesNamingUnknownTokens) {
  const std::string g = "\xC4\xA0";  // "Ġ"
  for (const std::string& merge : {std::string("a zz"), std::string("zz a"), std::string("a"), std::string(" a"),
                                   std::string("a "), std::string(""), std::string("b a"), g + "a ab"}) {
    GgufMeta m = bl();
    m.at("tokenizer.ggml.merges").strs.push_back(merge);
    expect_error(m, "tokenizer.ggml.merges[3]");
  }
  GgufMeta m = bl();
  m.erase("tokenizer.ggml.merges");
  expect_error(m, "tokenizer.ggml.merges");
}

TEST(TokenizerGgufHostile, VocabularyDefects) {
  GgufMeta m = sp();
  m.set("tokenizer.ggml.tokens", test::gguf_strings({})).set("tokenizer.ggml.scores", test::gguf_f32s({}));
  m.set("tokenizer.ggml.token_type", test::gguf_ints({}));
  expect_error(m, "tokenizer.ggml.tokens", "empty");
  m = bl();
  m.set("tokenizer.ggml.tokens", test::gguf_strings({})).set("tokenizer.ggml.token_type", test::gguf_ints({}));
  expect_error(m, "tokenizer.ggml.tokens", "empty");

  m = sp();
  m.erase("tokenizer.ggml.tokens");
  expect_error(m, "tokenizer.ggml.tokens");
  m = sp();
  m.erase("tokenizer.ggml.model");
  expect_error(m, "tokenizer.ggml.model");
  m = sp();
  m.erase("tokenizer.ggml.scores");
  expect_error(m, "tokenizer.ggml.scores");

  m = sp();
  m.at("tokenizer.ggml.tokens").strs[260] = "b";  // "a" -> a second "b"
  expect_error(m, "tokenizer.ggml.tokens", "twice");
  m = sp();
  m.at("tokenizer.ggml.tokens").strs[260] = "";
  expect_error(m, "tokenizer.ggml.tokens[260]", "empty");
  for (int64_t t : {0, 7, -1, 1000}) {
    m = sp();
    m.at("tokenizer.ggml.token_type").ints[260] = t;
    expect_error(m, "tokenizer.ggml.token_type[260]");
  }
  m = sp();
  m.at("tokenizer.ggml.token_type").ints[260] = 6;  // "a" is no <0xHH>
  expect_error(m, "tokenizer.ggml.token_type[260]", "byte");
  m = sp();
  m.at("tokenizer.ggml.scores").floats[261] = std::nan("");
  expect_error(m, "tokenizer.ggml.scores[261]", "NaN");

  // A byte-level vocabulary without all 256 byte tokens.
  m = bl();
  m.at("tokenizer.ggml.tokens").strs[65] = "zz";
  expect_error(m, "byte 65");
  // Special tokens: bounded length, valid UTF-8.
  m = bl();
  m.at("tokenizer.ggml.tokens").strs[261] = std::string(5000, 'x');
  expect_error(m, "tokenizer.ggml.tokens[261]");
  m = bl();
  m.at("tokenizer.ggml.tokens").strs[261] = "<|\xFF|>";
  expect_error(m, "tokenizer.ggml.tokens[261]", "UTF-8");
}

TEST(TokenizerGgufHostile, SpecialTokenSettings) {
  GgufMeta m = bl();
  m.erase("tokenizer.ggml.bos_token_id");  // llama-bpe adds BOS by default
  expect_error(m, "tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id");
  m = bl();
  m.erase("tokenizer.ggml.eos_token_id").set("tokenizer.ggml.add_eos_token", test::gguf_scalar(ValueType::Bool, 1));
  expect_error(m, "tokenizer.ggml.add_eos_token", "tokenizer.ggml.eos_token_id");
  m = sp();
  m.set("tokenizer.ggml.remove_extra_whitespaces", test::gguf_scalar(ValueType::Bool, 1));
  expect_error(m, "tokenizer.ggml.remove_extra_whitespaces");
}

// Every prefix of a valid file is refused by the reader or builds a working tokenizer.
TEST(TokenizerGgufHostile, TruncatedFiles) {
  const std::string bytes = bl().bytes();
  for (size_t n = 0; n < bytes.size(); n += 7) {
    try {
      test::GgufBytes g(bytes.substr(0, n));
      Tokenizer tok(tokenizer_spec_from_gguf(*g.file));
      tok.encode("ab ab <|eot_id|>", true, true);
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace camelid
