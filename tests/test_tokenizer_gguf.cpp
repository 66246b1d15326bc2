// Tokenizers from GGUF metadata: the fixture GGUF files (written by llama.cpp's tools) against the
// same tokenizers loaded from tokenizer.json and against the reference ids; small generated files
// for the keys the fixtures do not exercise; the end-of-turn ids and chat template they expose.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"
#include "fixtures.h"
#include "gguf_tokenizer_files.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer_test_files.h"

namespace camelid {
namespace {

using camelid::test::read_json;
using camelid::test::show;

using json = nlohmann::json;

struct GgufCase {
  const char* name;
  const char* gguf;
  const char* tokenizer_json;
  const char* reference;
};

// Both tokenizers of a case, built once for all the tests that use them.
struct Loaded {
  std::unique_ptr<gguf::File> file;
  TokenizerSpec json_spec;
  std::unique_ptr<Tokenizer> from_gguf, from_json;
};

const Loaded& loaded(const GgufCase& c) {
  static std::map<std::string, Loaded> cache;
  auto it = cache.find(c.name);
  if (it != cache.end()) return it->second;
  Loaded l;
  l.file = gguf::File::open(test::fixture(c.gguf));
  l.json_spec = load_tokenizer_json(test::fixture(c.tokenizer_json));
  l.from_gguf = std::make_unique<Tokenizer>(tokenizer_spec_from_gguf(*l.file));
  l.from_json = std::make_unique<Tokenizer>(l.json_spec);
  return cache.emplace(c.name, std::move(l)).first->second;
}

class TokenizerGguf : public ::testing::TestWithParam<GgufCase> {};

TEST_P(TokenizerGguf, SpecMatchesTokenizerJson) {
  const Loaded& l = loaded(GetParam());
  const TokenizerSpec& g = l.from_gguf->spec();
  const TokenizerSpec& j = l.json_spec;
  EXPECT_EQ(g.source, test::fixture(GetParam().gguf));
  EXPECT_EQ(g.kind, j.kind);
  EXPECT_EQ(g.tokens, j.tokens);
  EXPECT_EQ(g.types, j.types);
  EXPECT_EQ(g.split_patterns, j.split_patterns);
  EXPECT_EQ(g.ignore_merges, j.ignore_merges);
  EXPECT_EQ(g.byte_fallback, j.byte_fallback);
  EXPECT_EQ(g.strip_leading_space, j.strip_leading_space);
  EXPECT_EQ(g.prefix_ids, j.prefix_ids);
  EXPECT_EQ(g.suffix_ids, j.suffix_ids);
  EXPECT_EQ(g.bos_id, j.bos_id);
  EXPECT_EQ(g.unk_id, j.unk_id);
  ASSERT_EQ(g.added.size(), j.added.size());
  for (size_t i = 0; i < g.added.size(); ++i) {
    EXPECT_EQ(g.added[i].id, j.added[i].id);
    EXPECT_EQ(g.added[i].content, j.added[i].content);
    EXPECT_EQ(g.added[i].special, j.added[i].special);
    EXPECT_EQ(g.added[i].lstrip || g.added[i].rstrip, j.added[i].lstrip || j.added[i].rstrip);
  }
  if (g.kind == TokenizerSpec::Kind::ByteLevelBpe) {
    EXPECT_EQ(g.merges, j.merges);  // the converter writes tokenizer.json's merges as they are
  } else {
    EXPECT_TRUE(g.merges.empty());  // SentencePiece: ranked by the piece scores
    EXPECT_EQ(g.scores.size(), g.tokens.size());
    EXPECT_EQ(g.dummy_prefix, j.dummy_prefix);
    EXPECT_EQ(g.escape_spaces, j.escape_spaces);
  }
}

TEST_P(TokenizerGguf, EncodesTheCorpusLikeTokenizerJsonAndTheReference) {
  const Loaded& l = loaded(GetParam());
  const json corpus = read_json(test::fixture("tokenizers/corpus.json"));
  ASSERT_GT(corpus.size(), 40u);
  for (const json& t : corpus) {
    const std::string text = t;
    for (bool add_special : {false, true})
      for (bool parse_special : {false, true})
        EXPECT_EQ(l.from_gguf->encode(text, add_special, parse_special), l.from_json->encode(text, add_special, parse_special))
            << show(text) << " add_special=" << add_special << " parse_special=" << parse_special;
    const std::vector<int> ids = l.from_json->encode(text, false, true);
    EXPECT_EQ(l.from_gguf->decode(ids), l.from_json->decode(ids)) << show(text);
    EXPECT_EQ(l.from_gguf->decode(ids, true, true), l.from_json->decode(ids, true, true)) << show(text);
  }
  const json ref = read_json(test::fixture(GetParam().reference));
  ASSERT_GT(ref["cases"].size(), 40u);
  for (const json& c : ref["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(l.from_gguf->encode(text, false, true), c["ids"].get<std::vector<int>>()) << show(text);
    EXPECT_EQ(l.from_gguf->encode(text, true, true), c["ids_with_special"].get<std::vector<int>>()) << show(text);
    EXPECT_EQ(l.from_gguf->decode(c["ids"].get<std::vector<int>>()), c["decoded"].get<std::string>()) << show(text);
    if (c.contains("sp_ids")) {
      EXPECT_EQ(l.from_gguf->encode(text, false, false), c["sp_ids"].get<std::vector<int>>()) << show(text);
      EXPECT_EQ(l.from_gguf->decode(c["sp_ids"].get<std::vector<int>>()), c["sp_decoded"].get<std::string>()) << show(text);
    }
  }
}

TEST_P(TokenizerGguf, DecodesEveryTokenLikeTokenizerJson) {
  const Loaded& l = loaded(GetParam());
  ASSERT_EQ(l.from_gguf->vocab_size(), l.from_json->vocab_size());
  std::vector<int> all;
  for (int id = 0; id < l.from_gguf->vocab_size(); ++id) {
    ASSERT_EQ(l.from_gguf->decode({id}), l.from_json->decode({id})) << id;
    ASSERT_EQ(l.from_gguf->decode({id}, true, true), l.from_json->decode({id}, true, true)) << id;
    ASSERT_EQ(l.from_gguf->is_special(id), l.from_json->is_special(id)) << id;
    all.push_back(id);
  }
  EXPECT_EQ(l.from_gguf->decode(all), l.from_json->decode(all));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TokenizerGguf,
    ::testing::Values(GgufCase{"llama2", "gguf/qmix-q8_0.gguf", "tokenizers/llama2/tokenizer.json", "reference/public-tok-llama2.json"},
                      GgufCase{"llama3", "gguf/tiny-llama3-bf16.gguf", "tokenizers/llama3/tokenizer.json", "reference/public-tok-llama3.json"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(TokenizerGgufFixtures, EndOfTurnIdsAndChatTemplate) {
  auto l3 = gguf::File::open(test::fixture("gguf/tiny-llama3-bf16.gguf"));
  EXPECT_EQ(end_of_turn_ids_from_gguf(*l3), std::vector<int>{128009});  // <|eot_id|>, as the converter wrote it
  EXPECT_EQ(chat_template_from_gguf(*l3), read_tokenizer_config(test::fixture("models/tiny-llama3/tokenizer_config.json")).chat_template);
  auto l2 = gguf::File::open(test::fixture("gguf/qmix-q8_0.gguf"));
  EXPECT_EQ(end_of_turn_ids_from_gguf(*l2), std::vector<int>{2});
  EXPECT_NE(chat_template_from_gguf(*l2).find("[INST]"), std::string::npos);
}

TEST(TokenizerGgufFixtures, TokenizerLoadReadsAGgufFile) {
  auto tok = Tokenizer::load(test::fixture("gguf/tiny-llama3-bf16.gguf"));
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eos_ids(), std::vector<int>{128009});
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int>{128000, 9906, 1917}));
  EXPECT_TRUE(Tokenizer::available(test::fixture("gguf/tiny-llama3-bf16.gguf")));
}

// ---- small generated files: keys the fixtures do not exercise ----

Tokenizer tokenizer_of(const test::GgufMeta& m) {
  test::GgufBytes g(m.bytes());
  return Tokenizer(tokenizer_spec_from_gguf(*g.file));
}

TEST(TokenizerGgufTiny, SentencePieceVocabulary) {
  // 0 <unk>, 1 <s>, 2 </s>, 3..258 bytes, 259 "▁", 260 a, 261 b, 262 ab, 263 ▁a, 264 ▁ab, 265 <tool>.
  const Tokenizer tok = tokenizer_of(test::tiny_sp_gguf());
  EXPECT_EQ(tok.encode("ab"), (std::vector<int>{1, 264}));
  EXPECT_EQ(tok.encode("ab a", false), (std::vector<int>{264, 263}));
  EXPECT_EQ(tok.encode("\n", false), (std::vector<int>{259, 3 + '\n'}));      // byte fallback
  EXPECT_EQ(tok.encode("<tool>", false, false), (std::vector<int>{265}));   // user-defined: always matched
  EXPECT_EQ(tok.encode("</s>", false, true), (std::vector<int>{2}));
  EXPECT_NE(tok.encode("</s>", false, false), (std::vector<int>{2}));
  EXPECT_EQ(tok.decode({1, 264, 263, 2}), "<s> ab a</s>");
  EXPECT_EQ(tok.decode({1, 264, 263, 2}, true), "ab a");
  EXPECT_EQ(tok.eos_ids(), std::vector<int>{2});

  test::GgufMeta m = test::tiny_sp_gguf();
  m.set("tokenizer.ggml.add_space_prefix", test::gguf_scalar(gguf::ValueType::Bool, 0))
      .set("tokenizer.ggml.add_bos_token", test::gguf_scalar(gguf::ValueType::Bool, 0))
      .set("tokenizer.ggml.add_eos_token", test::gguf_scalar(gguf::ValueType::Bool, 1));
  const Tokenizer raw = tokenizer_of(m);
  EXPECT_EQ(raw.encode("ab"), (std::vector<int>{262, 2}));
  EXPECT_EQ(raw.decode({259, 260}), " a");

  // Without the id keys, llama.cpp's defaults for a SentencePiece vocabulary: 1, 2, 0.
  m = test::tiny_sp_gguf();
  m.erase("tokenizer.ggml.bos_token_id").erase("tokenizer.ggml.eos_token_id").erase("tokenizer.ggml.unknown_token_id");
  m.erase("tokenizer.ggml.add_bos_token").erase("tokenizer.ggml.token_type");
  const Tokenizer dflt = tokenizer_of(m);
  EXPECT_EQ(dflt.encode("ab"), (std::vector<int>{1, 264}));
  EXPECT_EQ(dflt.eos_ids(), std::vector<int>{2});
  EXPECT_EQ(dflt.decode({3 + 'h', 3 + 'i'}), "hi");  // <0xHH> pieces are bytes without token_type too
}

TEST(TokenizerGgufTiny, ByteLevelVocabulary) {
  // 0..255 bytes, 256 ab, 257 Ġa, 258 Ġab, 259 <|begin_of_text|>, 260 <|end_of_text|>, 261 <|eot_id|>, 262 <|eom_id|>.
  const Tokenizer bl = tokenizer_of(test::tiny_byte_level_gguf());
  EXPECT_EQ(bl.encode("ab ab"), (std::vector<int>{259, 256, 258}));
  EXPECT_EQ(bl.encode("<|eot_id|>", false, true), (std::vector<int>{261}));
  EXPECT_EQ(bl.decode({259, 256, 258, 261}), "<|begin_of_text|>ab ab<|eot_id|>");
  EXPECT_EQ(bl.decode({259, 256, 258, 261}, true), "ab ab");
  EXPECT_EQ(bl.eos_ids(), (std::vector<int>{260, 261, 262}));  // eos, then eot and eom
  EXPECT_EQ(bl.spec().split_patterns, load_tokenizer_json(test::fixture("tokenizers/llama3/tokenizer.json")).split_patterns);
  EXPECT_TRUE(bl.spec().ignore_merges);

  test::GgufBytes g(test::tiny_byte_level_gguf().bytes());
  EXPECT_EQ(end_of_turn_ids_from_gguf(*g.file), (std::vector<int>{260, 261, 262}));
  EXPECT_EQ(chat_template_from_gguf(*g.file), "");

  // "default" and "gpt-2": GPT-2's pattern (as tokenizers' ByteLevel), no BOS unless asked for.
  for (const char* pre : {"default", "gpt-2"}) {
    const Tokenizer gpt2 = tokenizer_of(test::tiny_byte_level_gguf(pre));
    EXPECT_EQ(gpt2.spec().split_patterns, std::vector<std::string>{tok::kGpt2Pattern}) << pre;
    EXPECT_FALSE(gpt2.spec().ignore_merges);
    EXPECT_EQ(gpt2.encode("ab ab"), (std::vector<int>{256, 258})) << pre;
  }
  test::GgufMeta m = test::tiny_byte_level_gguf("gpt-2");
  m.set("tokenizer.ggml.add_bos_token", test::gguf_scalar(gguf::ValueType::Bool, 1));
  EXPECT_EQ(tokenizer_of(m).encode("ab"), (std::vector<int>{259, 256}));
  m.erase("tokenizer.ggml.pre");  // older files: llama.cpp uses "default"
  EXPECT_EQ(tokenizer_of(m).spec().split_patterns, std::vector<std::string>{tok::kGpt2Pattern});
}

TEST(TokenizerGgufTiny, TokenizerLoadReadsAGgufFileByContent) {
  const std::string dir = test::temp_dir("gguf");
  // No .gguf extension, and a tokenizer_config.json beside it that must not apply.
  const std::string path = test::write_file(dir, "model.bin", test::tiny_byte_level_gguf().bytes());
  test::write_file(dir, "tokenizer_config.json", R"({"add_bos_token": false, "eos_token": "ab"})");
  auto tok = Tokenizer::load(path);
  EXPECT_EQ(tok->encode("ab"), (std::vector<int>{259, 256}));
  EXPECT_EQ(tok->eos_ids(), (std::vector<int>{260, 261, 262}));
}

}  // namespace
}  // namespace camelid
