// Tokenizers against the reference outputs of Hugging Face tokenizers and sentencepiece
// (fixtures/reference/public-tok-*.json), from tokenizer.json and from tokenizer.model.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace camelid {
namespace {

using camelid::test::read_json;
using camelid::test::show;

using json = nlohmann::json;

struct Case {
  const char* reference;
  const char* tokenizer;
};

class TokenizerConformance : public ::testing::TestWithParam<Case> {};

TEST_P(TokenizerConformance, IdsSpecialIdsAndDecoded) {
  const json ref = read_json(test::fixture(GetParam().reference));
  auto tok = Tokenizer::load(test::fixture(GetParam().tokenizer));
  ASSERT_GT(ref["cases"].size(), 40u);
  for (const json& c : ref["cases"]) {
    const std::string text = c["text"];
    // Hugging Face parses special-token text by default.
    EXPECT_EQ(tok->encode(text, false, true), c["ids"].get<std::vector<int>>()) << show(text);
    EXPECT_EQ(tok->encode(text, true, true), c["ids_with_special"].get<std::vector<int>>()) << show(text);
    EXPECT_EQ(tok->decode(c["ids"].get<std::vector<int>>()), c["decoded"].get<std::string>()) << show(text);
    if (c.contains("sp_ids")) {
      // sentencepiece never parses special-token text: our plain-text mode must match it.
      EXPECT_EQ(tok->encode(text, false, false), c["sp_ids"].get<std::vector<int>>()) << show(text);
      EXPECT_EQ(tok->decode(c["sp_ids"].get<std::vector<int>>()), c["sp_decoded"].get<std::string>()) << show(text);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerConformance,
                         ::testing::Values(Case{"reference/public-tok-llama2.json", "tokenizers/llama2/tokenizer.json"},
                                           Case{"reference/public-tok-llama3.json", "tokenizers/llama3/tokenizer.json"}),
                         [](const auto& info) { return info.index == 0 ? std::string("llama2") : std::string("llama3"); });

TEST(TokenizerConformance, SentencePieceModelMatchesSentencePiece) {
  const json ref = read_json(test::fixture("reference/public-tok-llama2.json"));
  auto tok = Tokenizer::load(test::fixture("tokenizers/llama2/tokenizer.model"));
  for (const json& c : ref["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text, false, false), c["sp_ids"].get<std::vector<int>>()) << show(text);
    EXPECT_EQ(tok->decode(c["sp_ids"].get<std::vector<int>>()), c["sp_decoded"].get<std::string>()) << show(text);
    // With special parsing on, the .model gives what tokenizer.json gives.
    EXPECT_EQ(tok->encode(text, false, true), c["ids"].get<std::vector<int>>()) << show(text);
    EXPECT_EQ(tok->encode(text, true, true), c["ids_with_special"].get<std::vector<int>>()) << show(text);
  }
}

TEST(TokenizerConformance, ModelDirectoriesPreferTokenizerJson) {
  auto tok = Tokenizer::load(test::fixture("models/tiny-llama2"));
  EXPECT_NE(tok->spec().source.find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_ids(), std::vector<int>{2});
  EXPECT_FALSE(read_tokenizer_config(test::fixture("models/tiny-llama2/tokenizer_config.json")).chat_template.empty());
  auto t3 = Tokenizer::load(test::fixture("models/tiny-llama3"));
  EXPECT_EQ(t3->bos_id(), 128000);
  EXPECT_EQ(t3->vocab_size(), 128256);
  EXPECT_EQ(read_tokenizer_config(test::fixture("models/tiny-llama3/tokenizer_config.json")).bos_token, "<|begin_of_text|>");
  EXPECT_TRUE(t3->is_special(t3->token_id("<|eot_id|>")));
}

}  // namespace
}  // namespace camelid
