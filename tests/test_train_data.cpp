// Data streams (uint32 ids, JSON ids, text), windows and their visiting order.
#include <gtest/gtest.h>

#include <set>

#include "fixtures.h"
#include "model_files.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

using namespace camelid;
using namespace camelid::train;
using camelid::test::expect_error;
using camelid::test::spit;
using camelid::test::TempDir;

namespace {
std::string u32(std::initializer_list<uint32_t> ids) {
  std::string s;
  for (uint32_t v : ids)
    for (int b = 0; b < 4; ++b) s += char((v >> (8 * b)) & 0xff);
  return s;
}
}  // namespace

TEST(TrainData, FormatsByExtensionAndName) {
  EXPECT_EQ(resolve_format("a.bin", DataFormat::Auto), DataFormat::Ids);
  EXPECT_EQ(resolve_format("a.u32", DataFormat::Auto), DataFormat::Ids);
  EXPECT_EQ(resolve_format("a.json", DataFormat::Auto), DataFormat::Json);
  EXPECT_EQ(resolve_format("a.txt", DataFormat::Auto), DataFormat::Text);
  EXPECT_EQ(resolve_format("a.txt", DataFormat::Ids), DataFormat::Ids);
  EXPECT_EQ(data_format_from_name("ids"), DataFormat::Ids);
  EXPECT_THROW(data_format_from_name("csv"), Error);
}

TEST(TrainData, ReadsUint32AndJson) {
  TempDir d;
  spit(d / "a.bin", u32({1, 2, 70000}));
  spit(d / "b.json", "[5, 6]");
  EXPECT_EQ(read_tokens(d / "a.bin", DataFormat::Auto, nullptr, 70001), (std::vector<int>{1, 2, 70000}));
  EXPECT_EQ(read_stream({d / "a.bin", d / "b.json"}, DataFormat::Auto, nullptr, 70001),
            (std::vector<int>{1, 2, 70000, 5, 6}));
}

TEST(TrainData, BadFilesNameWhatIsWrong) {
  TempDir d;
  spit(d / "odd.bin", u32({1, 2}) + "xyz");
  expect_error([&] { read_tokens(d / "odd.bin", DataFormat::Auto, nullptr, 10); }, {"odd.bin", "11 bytes", "uint32"});
  spit(d / "big.bin", u32({1, 2, 10}));
  expect_error([&] { read_tokens(d / "big.bin", DataFormat::Auto, nullptr, 10); }, {"big.bin", "token 2", "10"});
  spit(d / "neg.json", "[1, -3]");
  expect_error([&] { read_tokens(d / "neg.json", DataFormat::Auto, nullptr, 10); }, {"neg.json", "token 1", "-3"});
  spit(d / "huge.json", "[1, 18446744073709551615]");
  expect_error([&] { read_tokens(d / "huge.json", DataFormat::Auto, nullptr, 10); }, {"huge.json", "token 1"});
  spit(d / "obj.json", "{\"a\": 1}");
  expect_error([&] { read_tokens(d / "obj.json", DataFormat::Auto, nullptr, 10); }, {"obj.json", "array"});
  spit(d / "float.json", "[1.5]");
  expect_error([&] { read_tokens(d / "float.json", DataFormat::Auto, nullptr, 10); }, {"float.json", "element 0"});
  spit(d / "bad.json", "[1, 2");
  expect_error([&] { read_tokens(d / "bad.json", DataFormat::Auto, nullptr, 10); }, {"bad.json"});
  expect_error([&] { read_tokens(d / "missing.bin", DataFormat::Auto, nullptr, 10); }, {"missing.bin"});
  spit(d / "t.txt", "hello");
  expect_error([&] { read_tokens(d / "t.txt", DataFormat::Auto, nullptr, 10); }, {"t.txt", "tokenizer"});
}

TEST(TrainData, TextGetsBosBeforeEachDocument) {
  auto tok = Tokenizer::load(camelid::test::fixture("tokenizers/llama2"));
  TempDir d;
  spit(d / "a.txt", "Hello world");
  spit(d / "b.txt", "Goodbye");
  const auto a = tok->encode("Hello world", false), b = tok->encode("Goodbye", false);
  std::vector<int> want{tok->bos_id()};
  want.insert(want.end(), a.begin(), a.end());
  want.push_back(tok->bos_id());
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(read_stream({d / "a.txt", d / "b.txt"}, DataFormat::Auto, tok.get(), tok->vocab_size()), want);
  expect_error([&] { read_tokens(d / "a.txt", DataFormat::Text, tok.get(), 100); }, {"a.txt", "outside the vocabulary"});
}

TEST(TrainData, WindowsOfTPlusOneAtStrideT) {
  std::vector<int> s(22);
  for (int i = 0; i < 22; ++i) s[size_t(i)] = i;
  Windows w(s, 4, "x");
  EXPECT_EQ(w.count(), 5);  // (22 - 1) / 4
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j <= 4; ++j) EXPECT_EQ(w.window(i)[j], 4 * i + j);
  expect_error([] { Windows({1, 2, 3, 4}, 4, "--data"); }, {"--data", "4 tokens", "5"});
  expect_error([] { Windows({}, 4, "--data"); }, {"--data", "0 tokens"});
}

TEST(TrainData, NoShuffleOrderIsGlobalRowModN) {
  WindowOrder o(5, false, 1);
  // Step s, row b of B = 3 global rows: window (s*3 + b) mod 5.
  for (int s = 0; s < 4; ++s)
    for (int b = 0; b < 3; ++b) EXPECT_EQ(o.at(int64_t(s) * 3 + b), (s * 3 + b) % 5);
}

TEST(TrainData, ShuffleIsASeededPermutationPerEpoch) {
  WindowOrder a(50, true, 7), b(50, true, 7), c(50, true, 8);
  std::vector<int64_t> e0, e1, other;
  for (int g = 0; g < 50; ++g) e0.push_back(a.at(g)), other.push_back(c.at(g));
  for (int g = 50; g < 100; ++g) e1.push_back(a.at(g));
  EXPECT_EQ(std::set<int64_t>(e0.begin(), e0.end()).size(), 50u);
  EXPECT_EQ(std::set<int64_t>(e1.begin(), e1.end()).size(), 50u);
  EXPECT_NE(e0, e1);
  EXPECT_NE(e0, other);
  for (int g = 99; g >= 0; --g) EXPECT_EQ(b.at(g), g < 50 ? e0[size_t(g)] : e1[size_t(g - 50)]);  // any order of calls
}

TEST(TrainData, ValidationSplitTakesTheTail) {
  std::vector<int> s{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto tail = split_tail(s, 0.3);
  EXPECT_EQ(s, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(tail, (std::vector<int>{7, 8, 9}));
  EXPECT_THROW(split_tail(s, 1.0), Error);
  EXPECT_THROW(split_tail(s, 0), Error);
}
