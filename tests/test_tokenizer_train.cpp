// The BPE tokenizer trainer: exact vocabulary size, deterministic output, hand-computed merges,
// files that camelid's loader reads and that encode as Hugging Face tokenizers would (checked
// against a plain re-implementation of its BPE), exact round trips, and refused inputs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "fixtures.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json_writer.h"
#include "tokenizer/utf8.h"

namespace camelid {
namespace {

namespace fs = std::filesystem;
const std::string kSpace = "\xE2\x96\x81";

const char* kText =
    "The llama is a domesticated South American camelid, widely used as a meat and pack animal by\n"
    "Andean cultures since the pre-Columbian era. Llamas are social animals and live with others as a\n"
    "herd. Their wool is soft and contains only a small amount of lanolin. Llamas can learn simple tasks\n"
    "after a few repetitions. When using a pack, they can carry about 25 to 30% of their body weight for\n"
    "8 to 13 km (5-8 miles). The name llama was adopted by European settlers from native Peruvians.\n"
    "Les lamas sont des animaux sociaux. El llama es un animal domesticado. Лама — домашнее животное.\n"
    "羊驼是一种家养的南美骆驼科动物。 ラマは南米のラクダ科の動物です。 🦙🦙 llama emoji 🦙\n"
    "    indented code: for (int i = 0; i < n; ++i) { sum += x[i]; }\n";

fs::path temp_dir(const std::string& name) {
  const fs::path p = fs::path(camelid::test::scratch_dir()) / ("tt_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string write_file(const std::string& name, const std::string& content) {
  const fs::path p = temp_dir("in") / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

TrainedTokenizer train_text(const std::string& text, int64_t vocab, TokenizerTrainType type = TokenizerTrainType::SentencePieceBpe,
                            int64_t min_freq = 1) {
  TokenizerTrainer t(TokenizerTrainOptions{type, vocab, min_freq, 0});
  t.add_text(text);
  return t.train();
}

std::unique_ptr<Tokenizer> load(const TrainedTokenizer& t, const std::string& name) {
  const fs::path dir = temp_dir(name);
  write_tokenizer_files(t, dir.string());
  return Tokenizer::load(dir.string());
}

// Hugging Face tokenizers' BPE on this pipeline, written plainly: prepend "▁", spaces -> "▁",
// characters outside the vocabulary as byte tokens, then always merge the lowest-ranked pair
// (leftmost on ties) over the whole text.
std::vector<int> reference_encode(const TrainedTokenizer& t, const std::string& text) {
  std::map<std::string, int> ids;
  for (size_t i = 0; i < t.vocab.size(); ++i) ids[t.vocab[i]] = int(i);
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t r = 0; r < t.merges.size(); ++r) rank.emplace(t.merges[r], r);
  std::vector<std::string> syms;
  if (!text.empty()) {
    std::string norm = kSpace;
    for (char c : text) norm += c == ' ' ? kSpace : std::string(1, c);
    for (size_t i = 0; i < norm.size();) {
      const size_t n = utf8::valid_length(norm, i);
      const std::string ch = norm.substr(i, n);
      if (ids.count(ch)) {
        syms.push_back(ch);
      } else {
        for (unsigned char b : ch) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", b);
          syms.push_back(name);
        }
      }
      i += n;
    }
  }
  for (;;) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      auto it = rank.find({syms[i], syms[i + 1]});
      if (it != rank.end() && it->second < best) best = it->second, at = i;
    }
    if (best == SIZE_MAX) break;
    syms[at] += syms[at + 1];
    syms.erase(syms.begin() + long(at) + 1);
  }
  std::vector<int> out;
  for (const std::string& s : syms) out.push_back(ids.at(s));
  return out;
}

// The same for the byte-level pipeline: the regex's pieces, each piece's bytes as GPT-2
// characters, lowest-ranked pair first within a piece.
std::vector<int> reference_encode_byte_level(const TrainedTokenizer& t, const std::string& text) {
  std::map<std::string, int> ids;
  for (size_t i = 0; i < t.vocab.size(); ++i) ids[t.vocab[i]] = int(i);
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t r = 0; r < t.merges.size(); ++r) rank.emplace(t.merges[r], r);
  std::vector<std::string_view> pieces;
  RegexSplit(tok::kLlama3Pattern, "test").split(text, pieces);
  std::vector<int> out;
  for (std::string_view p : pieces) {
    std::vector<std::string> syms;
    for (unsigned char b : p) syms.push_back(byte_level::byte_to_text(b));
    for (;;) {
      size_t best = SIZE_MAX, at = 0;
      for (size_t i = 0; i + 1 < syms.size(); ++i) {
        auto it = rank.find({syms[i], syms[i + 1]});
        if (it != rank.end() && it->second < best) best = it->second, at = i;
      }
      if (best == SIZE_MAX) break;
      syms[at] += syms[at + 1];
      syms.erase(syms.begin() + long(at) + 1);
    }
    for (const std::string& s : syms) out.push_back(ids.at(s));
  }
  return out;
}

// Random valid UTF-8: ASCII, control characters (NUL included), Latin, Cyrillic, CJK, emoji and
// other 4-byte characters. Not U+2581: the Llama 2 pipeline decodes it as a space, by design.
std::string random_text(std::mt19937& rng) {
  static const std::pair<uint32_t, uint32_t> ranges[] = {{0x20, 0x7E},     {0x00, 0x1F},   {0xA0, 0x24F},
                                                         {0x400, 0x4FF},   {0x4E00, 0x9FFF}, {0x1F300, 0x1FAFF},
                                                         {0x10000, 0x10FFFF}, {0x2500, 0x25FF}};
  std::string s;
  const int n = int(rng() % 40);
  for (int i = 0; i < n; ++i) {
    auto [lo, hi] = ranges[rng() % std::size(ranges)];
    uint32_t cp = lo + rng() % (hi - lo + 1);
    if (cp == 0x2581) cp = ' ';
    utf8::append_codepoint(s, cp);
  }
  return s;
}

TEST(TokenizerTrain, VocabularyHasExactlyTheSizeAskedFor) {
  for (int64_t n : {260, 300, 400, 500}) {
    const TrainedTokenizer t = train_text(kText, n);
    EXPECT_EQ(int64_t(t.vocab.size()), n);
    auto tok = load(t, "size");
    EXPECT_EQ(tok->vocab_size(), n);
    EXPECT_EQ(tok->token_text(0), "<unk>");
    EXPECT_EQ(tok->token_text(1), "<s>");
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_ids(), std::vector<int>{2});
    EXPECT_EQ(tok->token_text(3), "<0x00>");
    EXPECT_EQ(tok->token_text(258), "<0xFF>");
    EXPECT_EQ(tok->token_text(259), kSpace);
  }
  // Fewer pairs than asked for: every word becomes one token, and training stops.
  const TrainedTokenizer small = train_text("ab ab", 1000);
  EXPECT_EQ(small.vocab.size(), 259u + 3 + 2);  // "▁", "a", "b"; "ab", "▁ab"
}

TEST(TokenizerTrain, HandComputedMerges) {
  // Sennrich et al.'s toy corpus. Pair counts with "▁" words: "e s" and "s t" 9 (tie: "e" sorts
  // first), then "es t" 9; "l o", "o w", "▁ l" 7 ("l" < "o" < "▁"), ...
  const TrainedTokenizer t = train_text(
      "low low low low low lower lower newest newest newest newest newest newest widest widest widest\n", 1000);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"e", "s"},  {"es", "t"},  {"l", "o"},     {"lo", "w"},  {kSpace, "low"}, {"e", "w"},       {"ew", "est"}, {"n", "ewest"},
      {kSpace, "newest"}, {"d", "est"}, {"i", "dest"}, {"w", "idest"}, {kSpace, "widest"}, {"e", "r"}, {kSpace + "low", "er"}};
  EXPECT_EQ(t.merges, want);
  EXPECT_EQ(t.vocab.size(), 259u + 11 + 15);
  // Characters by frequency ("▁" first; ties by their bytes), then merged tokens in order.
  EXPECT_EQ(t.vocab[259], kSpace);
  EXPECT_EQ(t.vocab[260], "e");  // 6*2 + 2 + 3 = 17
  EXPECT_EQ(t.vocab[259 + 11], "es");
  EXPECT_EQ(t.vocab.back(), kSpace + "lower");
  auto tok = load(t, "toy");
  EXPECT_EQ(tok->encode("lowest newer", false), reference_encode(t, "lowest newer"));
  EXPECT_EQ(tok->encode("lower", false), std::vector<int>{int(t.vocab.size()) - 1});
}

TEST(TokenizerTrain, Deterministic) {
  const std::string a = dump_json(tokenizer_json(train_text(kText, 420)));
  const std::string b = dump_json(tokenizer_json(train_text(kText, 420)));
  EXPECT_EQ(a, b);
  // Line by line gives the same as all at once.
  TokenizerTrainer t(TokenizerTrainOptions{TokenizerTrainType::SentencePieceBpe, 420, 1, 0});
  std::string_view rest = kText;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    t.add_text(rest.substr(0, nl + 1));
    rest.remove_prefix(nl + 1);
  }
  EXPECT_EQ(dump_json(tokenizer_json(t.train())), a);
}

TEST(TokenizerTrain, EncodesAsTheReferenceBpeAndRoundTrips) {
  const TrainedTokenizer t = train_text(kText, 450, TokenizerTrainType::SentencePieceBpe, 2);
  auto tok = load(t, "roundtrip");
  std::mt19937 rng(12);
  std::vector<std::string> texts = {"",  " ", "  two leading", "trailing  ", "The llama's wool", "\n\t\r\x01",
                                    std::string("nul\0inside", 10), "llamas llamas 🦙", "羊驼 ラマ Лама"};
  for (int i = 0; i < 300; ++i) texts.push_back(random_text(rng));
  for (const std::string& s : texts) {
    const std::vector<int> ids = tok->encode(s, false);
    EXPECT_EQ(ids, reference_encode(t, s)) << s;
    EXPECT_EQ(tok->decode(ids), s);
    const std::vector<int> with_bos = tok->encode(s, true);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos[0], 1);
    EXPECT_EQ(tok->decode(with_bos, true), s);
  }
  // Frequent words are single tokens.
  EXPECT_EQ(tok->encode("llama", false).size(), 1u);
}

TEST(TokenizerTrain, RareCharactersUseByteFallback) {
  const TrainedTokenizer t = train_text("aaa bbb aaa bbb z", 300, TokenizerTrainType::SentencePieceBpe, 2);
  EXPECT_EQ(std::count(t.vocab.begin(), t.vocab.end(), "z"), 0);
  auto tok = load(t, "rare");
  const std::vector<int> ids = tok->encode("z", false);
  ASSERT_EQ(ids.size(), 2u);  // "▁" then the byte
  EXPECT_EQ(tok->token_text(ids[1]), "<0x7A>");
  EXPECT_EQ(tok->decode(ids), "z");
  // A character budget: at vocabulary 260 only "▁" gets a token.
  const TrainedTokenizer tiny = train_text(kText, 260);
  EXPECT_EQ(tiny.vocab.back(), kSpace);
  EXPECT_TRUE(tiny.merges.empty());
  auto tt = load(tiny, "tiny");
  EXPECT_EQ(tt->decode(tt->encode("héllo wörld", false)), "héllo wörld");
}

TEST(TokenizerTrain, MergesNeverProduceSpecialOrByteTokenTexts) {
  // "<s" + ">" and "<0x41" + ">" are the most frequent pairs here: their texts are taken.
  std::string text;
  for (char c = 'a'; c <= 'p'; ++c) text += std::string(1, c) + "<s> " + std::string(1, c) + "<0x41> ";
  const TrainedTokenizer t = train_text(text + "\n", 400);
  std::set<std::string> seen;
  for (const std::string& v : t.vocab) EXPECT_TRUE(seen.insert(v).second) << v;
  for (auto& [a, b] : t.merges) {
    EXPECT_NE(a + b, "<s>");
    EXPECT_NE(a + b, "<0x41>");
  }
  auto tok = load(t, "reserved");
  for (std::string s : {"a<0x41>", "b<s>", "<s>", "</s>"}) {
    EXPECT_EQ(tok->decode(tok->encode(s, false)), s);
    EXPECT_EQ(tok->encode(s, false), reference_encode(t, s));
  }
}

TEST(TokenizerTrain, ByteLevel) {
  const TrainedTokenizer t = train_text(kText, 600, TokenizerTrainType::ByteLevelBpe);
  EXPECT_EQ(t.vocab.size(), 600u);
  EXPECT_EQ(t.vocab[599], "<|eot_id|>");
  EXPECT_EQ(t.vocab[595], "<|begin_of_text|>");
  auto tok = load(t, "bytelevel");
  EXPECT_EQ(tok->vocab_size(), 600);
  EXPECT_EQ(tok->bos_id(), 595);
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string s = random_text(rng);
    const std::vector<int> ids = tok->encode(s, true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], 595);
    EXPECT_EQ(std::vector<int>(ids.begin() + 1, ids.end()), reference_encode_byte_level(t, s));
    EXPECT_EQ(tok->decode(ids, true), s);
  }
  EXPECT_EQ(tok->encode(" llama", false).size(), 1u);
  for (std::string s : {std::string(kText), std::string("  don't   stop\n\n 12345 ")})
    EXPECT_EQ(tok->encode(s, false), reference_encode_byte_level(t, s));
  EXPECT_EQ(dump_json(tokenizer_json(t)), dump_json(tokenizer_json(train_text(kText, 600, TokenizerTrainType::ByteLevelBpe))));
}

TEST(TokenizerTrain, ConfigFile) {
  const TrainedTokenizer t = train_text(kText, 300);
  const auto c = tokenizer_config_json(t, TokenizerFileOptions{2048});
  EXPECT_EQ(c["bos_token"], "<s>");
  EXPECT_EQ(c["eos_token"], "</s>");
  EXPECT_EQ(c["add_bos_token"], true);
  EXPECT_EQ(c["model_max_length"], 2048);
  EXPECT_TRUE(c["chat_template"].is_string());
  EXPECT_EQ(c["added_tokens_decoder"]["2"]["content"], "</s>");
}

TEST(TokenizerTrain, MaxBytes) {
  TokenizerTrainer t(TokenizerTrainOptions{TokenizerTrainType::SentencePieceBpe, 300, 1, 100});
  EXPECT_FALSE(t.add_text(kText));
  EXPECT_LE(t.bytes(), 100u);
  EXPECT_GT(t.bytes(), 0u);
  EXPECT_FALSE(t.add_text("more"));
  EXPECT_EQ(t.train().bytes, t.bytes());
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerTrain, BadInputsAreRefused) {
  using T = TokenizerTrainType;
  auto opts = [](int64_t v, T type = T::SentencePieceBpe, int64_t mf = 2) { return TokenizerTrainOptions{type, v, mf, 0}; };
  EXPECT_NE(error_of([&] { TokenizerTrainer t(opts(259)); }).find("--vocab-size"), std::string::npos);
  EXPECT_NE(error_of([&] { TokenizerTrainer t(opts(100)); }).find("too small"), std::string::npos);
  EXPECT_NE(error_of([&] { TokenizerTrainer t(opts(260, T::ByteLevelBpe)); }).find("--vocab-size"), std::string::npos);
  EXPECT_NE(error_of([&] { TokenizerTrainer t(opts(1'000'001)); }).find("too large"), std::string::npos);
  EXPECT_NE(error_of([&] { TokenizerTrainer t(opts(300, T::SentencePieceBpe, 0)); }).find("--min-frequency"), std::string::npos);
  EXPECT_NO_THROW(TokenizerTrainer t(opts(1'000'000)));

  const std::string empty = write_file("empty.txt", "");
  EXPECT_NE(error_of([&] { train_tokenizer({empty}, opts(300)); }).find("empty.txt is empty"), std::string::npos);
  const std::string blank = write_file("blank.txt", "\n\n\r\n");
  EXPECT_NE(error_of([&] { train_tokenizer({blank}, opts(300)); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] { train_tokenizer({"/nonexistent/corpus.txt"}, opts(300)); }).find("/nonexistent/corpus.txt"),
            std::string::npos);
  const std::string dir = temp_dir("adir").string();
  EXPECT_NE(error_of([&] { train_tokenizer({dir}, opts(300)); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { train_tokenizer({}, opts(300)); }).find("no input files"), std::string::npos);
  if (::geteuid() != 0) {  // root reads anything
    const std::string locked = write_file("locked.txt", "text");
    fs::permissions(locked, fs::perms::none);
    EXPECT_NE(error_of([&] { train_tokenizer({locked}, opts(300)); }).find("locked.txt: cannot open"), std::string::npos);
  }
  // Invalid UTF-8 is read as U+FFFD, never a crash or a broken file.
  const std::string junk = write_file("junk.txt", std::string("ab\xff\xfe cd \xc3 ab cd\n", 14));
  const TrainedTokenizer t = train_tokenizer({junk, junk}, opts(280, T::SentencePieceBpe, 1));
  EXPECT_NO_THROW(load(t, "junk"));
}

}  // namespace
}  // namespace camelid
