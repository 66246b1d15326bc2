// decode(encode(x)) == x over random Unicode strings and over the text of every token, and the
// streaming decoder against whole-sequence decoding.
#include <gtest/gtest.h>

#include <random>

#include "fixtures.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace camelid {
namespace {

const char* kTokenizers[] = {"tokenizers/llama2/tokenizer.json", "tokenizers/llama2/tokenizer.model",
                             "tokenizers/llama3/tokenizer.json"};

std::string random_text(std::mt19937& rng, int n) {
  // Mostly ASCII and spaces, with Latin, Cyrillic, CJK, emoji, combining marks and controls.
  static const uint32_t ranges[][2] = {{0x20, 0x7E}, {0x20, 0x20}, {0x09, 0x0D}, {0xA0, 0x24F}, {0x400, 0x4FF},
                                       {0x300, 0x36F}, {0x4E00, 0x4FFF}, {0xAC00, 0xACFF}, {0x1F300, 0x1F6FF},
                                       {0x1780, 0x17FF}, {0x10000, 0x10FFFF}};
  std::string s;
  for (int i = 0; i < n; ++i) {
    const auto& r = ranges[rng() % (sizeof ranges / sizeof ranges[0])];
    uint32_t cp = r[0] + rng() % (r[1] - r[0] + 1);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    utf8::append_codepoint(s, cp);
  }
  return s;
}

class RoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTrip, RandomUnicodeStrings) {
  auto tok = Tokenizer::load(test::fixture(GetParam()));
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string s = random_text(rng, 1 + int(rng() % 40));
    // The dummy-prefix rule drops one leading space on decode, exactly as the reference does:
    // a text starting with a space comes back unchanged only because "▁" is prepended first.
    const auto ids = tok->encode(s, false, false);
    ASSERT_EQ(tok->decode(ids), s) << s;
    // With BOS and special tokens skipped, the same text.
    ASSERT_EQ(tok->decode(tok->encode(s, true, false), true), s) << s;
  }
}

TEST_P(RoundTrip, EveryTokenText) {
  auto tok = Tokenizer::load(test::fixture(GetParam()));
  int checked = 0;
  for (int id = 0; id < tok->vocab_size(); ++id) {
    if (tok->is_special(id)) continue;
    const std::string x = tok->decode({id});
    ASSERT_EQ(tok->decode(tok->encode(x, false, false)), x) << "token " << id;
    ++checked;
  }
  EXPECT_GT(checked, 30000);
}

TEST_P(RoundTrip, StreamingEqualsWholeDecode) {
  auto tok = Tokenizer::load(test::fixture(GetParam()));
  std::mt19937 rng(11);
  for (int i = 0; i < 100; ++i) {
    const std::string s = random_text(rng, 1 + int(rng() % 60));
    const auto ids = tok->encode(s, true, false);
    StreamDecoder dec(*tok);
    std::string streamed;
    for (int id : ids) {
      const std::string piece = dec.push(id);
      ASSERT_EQ(utf8::sanitize(piece), piece) << "half a character was emitted";
      streamed += piece;
    }
    streamed += dec.flush();
    ASSERT_EQ(streamed, tok->decode(ids, true)) << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RoundTrip, ::testing::ValuesIn(kTokenizers), [](const auto& info) {
  return std::string(info.index == 0 ? "llama2_json" : info.index == 1 ? "llama2_model" : "llama3_json");
});

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  auto tok = Tokenizer::load(test::fixture("tokenizers/llama2/tokenizer.json"));
  // "🦙" is not in the Llama 2 vocabulary: it is four byte-fallback tokens.
  const auto ids = tok->encode("a🦙", false, false);
  ASSERT_EQ(ids.size(), 5u);
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(ids[0]), "a");
  EXPECT_EQ(dec.push(ids[1]), "");
  EXPECT_EQ(dec.push(ids[2]), "");
  EXPECT_EQ(dec.push(ids[3]), "");
  EXPECT_EQ(dec.push(ids[4]), "🦙");
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, KeepsSpacesBetweenTokens) {
  auto tok = Tokenizer::load(test::fixture("tokenizers/llama2/tokenizer.json"));
  const auto ids = tok->encode("Hello world again", false, false);
  StreamDecoder dec(*tok);
  std::string out;
  for (int id : ids) out += dec.push(id);
  EXPECT_EQ(out, "Hello world again");
}

}  // namespace
}  // namespace camelid
