// Text and ids from strangers (issue 9): the server tokenizes request bodies of several MB, so
// encoding pathological text must be bounded, linear work with both fixture tokenizers, and any
// id sequence must decode or fail cleanly. CAMELID_TOK_TEXT_MB=8 runs the cases at 8 MB and
// prints the throughput (the default, 1 MB, keeps the suite quick).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>

#include "core/error.h"
#include "fixtures.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "sanitizer_slowdown.h"
#include "tokenizer_test_files.h"

namespace camelid {
namespace {

constexpr double kSlowdown = testing_support::kAddressSanitizer ? 10 : 1;  // sanitizer builds

using camelid::test::seconds_since;

size_t text_bytes() {
  const char* mb = std::getenv("CAMELID_TOK_TEXT_MB");
  const double m = mb ? std::atof(mb) : (kSlowdown > 1 ? 0.25 : 1.0);
  return size_t(std::max(0.01, m) * (1 << 20));
}

std::string repeat(const std::string& unit, size_t n) {
  std::string s;
  s.reserve(n + unit.size());
  while (s.size() < n) s += unit;
  return s;
}

struct TextCase {
  const char* name;
  std::string text;
};

std::vector<TextCase> pathological_texts(size_t n) {
  std::string every_byte, invalid;
  for (size_t i = 0; i < n; ++i) every_byte += char(i % 256), invalid += char(0x80 + i % 64);
  std::string words;
  std::mt19937 rng(7);
  while (words.size() < n) words += char('a' + rng() % 26), words += rng() % 6 ? "" : " ";
  return {
      {"one word", std::string(n, 'a')},
      {"special-token text", repeat("<|eot_id|><s></s>", n)},
      {"near-special text", repeat("<|", n)},
      {"invalid UTF-8", invalid},
      {"digits", std::string(n, '7')},
      {"spaces", std::string(n, ' ')},
      {"newlines", std::string(n, '\n')},
      {"space newline", repeat(" \n", n)},
      {"punctuation", std::string(n, '!')},
      {"every byte", every_byte},
      {"CJK", repeat("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", n)},
      {"metaspace", repeat("\xE2\x96\x81", n)},
      {"random words", words},
  };
}

class HostileText : public ::testing::TestWithParam<const char*> {};

TEST_P(HostileText, PathologicalTextIsLinearWork) {
  auto tok = Tokenizer::load(test::fixture(GetParam()));
  const size_t n = text_bytes();
  const double mb = double(n) / (1 << 20);
  const bool byte_level = tok->spec().kind == TokenizerSpec::Kind::ByteLevelBpe;
  for (const TextCase& c : pathological_texts(n)) {
    for (bool special : {false, true}) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<int> ids = tok->encode(c.text, true, special);
      const double enc = seconds_since(t0);
      const auto t1 = std::chrono::steady_clock::now();
      const std::string back = tok->decode(ids, /*skip_special=*/true);  // without the BOS
      const double dec = seconds_since(t1);
      std::printf("%-8s %-20s special=%d  encode %7.2f MB/s  decode %8.1f MB/s  (%zu ids)\n", GetParam() + 11, c.name,
                  int(special), mb / enc, mb / dec, ids.size());
      // Linear work runs at megabytes per second; quadratic work on a megabyte takes hours.
      EXPECT_LT(enc, 20 * mb * kSlowdown) << c.name;
      if (!special) {
        // Plain text round-trips (SentencePiece: "▁" in the text reads back as a space).
        std::string want = utf8::sanitize(c.text);
        if (!byte_level)
          for (size_t at = 0; (at = want.find("\xE2\x96\x81", at)) != std::string::npos;) want.replace(at, 3, " ");
        EXPECT_TRUE(back == want) << c.name;
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    tok->contains_special_text(c.text);
    EXPECT_LT(seconds_since(t0), 2 * mb * kSlowdown) << c.name;
  }
}

TEST_P(HostileText, AnyIdsDecodeOrFailCleanly) {
  auto tok = Tokenizer::load(test::fixture(GetParam()));
  std::mt19937 rng(11);
  std::vector<int> ids(100000);
  for (int& id : ids) id = int(rng() % uint32_t(tok->vocab_size()));
  EXPECT_TRUE(utf8::is_valid(tok->decode(ids)));
  EXPECT_TRUE(utf8::is_valid(tok->decode(ids, true)));
  // Streamed, random ids give valid text too (not always decode()'s: a run of byte tokens that
  // is invalid UTF-8 as a whole is replaced as a whole only when decoded at once).
  StreamDecoder dec(*tok, false);
  std::string streamed;
  for (int id : ids) streamed += dec.push(id);
  streamed += dec.flush();
  EXPECT_TRUE(utf8::is_valid(streamed));
  // Ids of real text stream to exactly decode()'s text.
  std::string text;
  while (text.size() < 100000) text += char(rng() % 128), text += rng() % 5 ? "" : "ð¦Ã©";
  const std::vector<int> real = tok->encode(text, false, false);
  StreamDecoder dec2(*tok, false);
  streamed.clear();
  for (int id : real) streamed += dec2.push(id);
  streamed += dec2.flush();
  EXPECT_TRUE(streamed == tok->decode(real)) << "streamed text differs";
  for (int bad : {-1, tok->vocab_size(), INT32_MAX, INT32_MIN}) {
    EXPECT_THROW(tok->decode({0, bad}), Error);
    EXPECT_THROW(tok->token_text(bad), Error);
    EXPECT_FALSE(tok->is_special(bad));
  }
}

TEST_P(HostileText, StreamDecoderSurvivesABadId) {
  auto tok = Tokenizer::load(test::fixture(GetParam()));
  const std::vector<int> ids = tok->encode("caf\xC3\xA9 \xF0\x9F\xA6\x99 ok", false, false);
  StreamDecoder dec(*tok);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    out += dec.push(ids[i]);
    if (i == 1) {
      try {
        dec.push(-7);
        ADD_FAILURE() << "no error for id -7";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token id -7 is out of range"), std::string::npos) << e.what();
      }
      EXPECT_THROW(dec.push(tok->vocab_size()), Error);
    }
  }
  out += dec.flush();
  EXPECT_EQ(out, "caf\xC3\xA9 \xF0\x9F\xA6\x99 ok");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HostileText,
                         ::testing::Values("tokenizers/llama2", "tokenizers/llama3"),
                         [](const auto& info) { return std::string(info.index == 0 ? "llama2" : "llama3"); });

// With a hostile tokenizer file the work stays bounded too.
TEST(HostileTokenizerText, CatastrophicRegexFailsFast) {
  for (const char* pattern : {"(a+)+$", "(a|aa)+$", R"((\w+\s?)+$)"}) {
    Tokenizer tok(parse_tokenizer_json(test::tiny_byte_level_json(pattern).dump(), "evil/tokenizer.json"));
    const auto t0 = std::chrono::steady_clock::now();
    try {
      tok.encode(std::string(5000, 'a') + "!", false, false);
      ADD_FAILURE() << pattern << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pre-tokenizer regex failed"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
    }
    EXPECT_LT(seconds_since(t0), 5 * kSlowdown) << pattern;
  }
}

TEST(HostileTokenizerText, LongAddedTokensDoNotMultiplyTheWork) {
  // Each position of "aaa..." starts a near-match of a 1000-byte token: a scan per position
  // would cost 10^9 steps per megabyte.
  auto j = test::tiny_byte_level_json();
  j["added_tokens"].push_back({{"id", 258}, {"content", std::string(1000, 'a') + "b"}, {"special", false}});
  j["added_tokens"].push_back({{"id", 259}, {"content", std::string(999, 'a')}, {"special", true}});
  Tokenizer tok(parse_tokenizer_json(j.dump(), "long/tokenizer.json"));
  const std::string text(text_bytes(), 'a');
  const auto t0 = std::chrono::steady_clock::now();
  const auto plain = tok.encode(text, false, false);
  const auto special = tok.encode(text, false, true);
  EXPECT_FALSE(tok.contains_special_text(std::string(998, 'a')));
  EXPECT_TRUE(tok.contains_special_text("x" + std::string(999, 'a')));
  EXPECT_LT(seconds_since(t0), 5 * kSlowdown);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 259), 0);
  EXPECT_EQ(std::count(special.begin(), special.end(), 259), long(text.size() / 999));
  // The longest token at the leftmost position wins.
  const std::string mixed = "x" + std::string(1000, 'a') + "b" + std::string(999, 'a');
  EXPECT_EQ(tok.encode(mixed, false, true), (std::vector<int>{'x' - 0, 258, 259}));
}

TEST(HostileTokenizerText, AddedTokenMatchingKeepsReferenceSemantics) {
  // Overlapping and nested tokens: leftmost first, then longest; non-special ones always match.
  auto j = test::tiny_byte_level_json();
  j["added_tokens"] = {{{"id", 257}, {"content", "<|a|>"}, {"special", true}},
                       {{"id", 258}, {"content", "<|a|><|b|>"}, {"special", true}},
                       {{"id", 259}, {"content", "|><|"}, {"special", false}},
                       {{"id", 260}, {"content", "<|a"}, {"special", false}}};
  Tokenizer tok(parse_tokenizer_json(j.dump(), "t/tokenizer.json"));
  auto ids = [&](const std::string& s, bool special) {
    std::vector<int> out;
    for (int id : tok.encode(s, false, special))
      if (id >= 257) out.push_back(id);
    return out;
  };
  EXPECT_EQ(ids("<|a|><|b|>", true), (std::vector<int>{258}));
  EXPECT_EQ(ids("<|a|><|c|>", true), (std::vector<int>{257}));
  EXPECT_EQ(ids("<|a|><|b|>", false), (std::vector<int>{260, 259}));
  EXPECT_EQ(ids("x|><|a|>", true), (std::vector<int>{259}));
  EXPECT_EQ(tok.decode(tok.encode("x<|a|><|b|>y<|a", false, true)), "x<|a|><|b|>y<|a");
}

}  // namespace
}  // namespace camelid
