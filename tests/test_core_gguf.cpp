// The GGUF reader: the fixture files (written by llama.cpp), a writer round trip, and hostile
// files (truncated at every offset, corrupted counts/lengths/offsets/types/dims): one clear
// Error each, no crash, no huge allocation.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"
#include "fixtures.h"

using namespace camelid;
using namespace camelid::gguf;

namespace {

std::unique_ptr<File> parse(const std::string& bytes) {
  return File::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.gguf");
}

// Expects parsing to fail with a message containing `what`.
void expect_error(const std::string& bytes, const std::string& what) {
  try {
    parse(bytes);
    ADD_FAILURE() << "parsed, expected an error containing '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

Writer small_model() {
  Writer w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 1);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_strings("tokenizer.ggml.tokens", {"<unk>", "a", "b"});
  w.add_f32s("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  std::vector<uint8_t> f32(8 * 4, 0), q8(2 * 34, 0);
  w.add_tensor("a.weight", DType::F32, {8}, f32);
  w.add_tensor("b.weight", DType::Q8_0, {32, 2}, q8);
  return w;
}

template <class T>
void poke(std::string& s, size_t at, T v) {
  std::memcpy(s.data() + at, &v, sizeof v);
}

// Byte offset of the first occurrence of `needle` (a key or tensor name) in the file.
size_t find_bytes(const std::string& s, const std::string& needle) {
  const size_t at = s.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return at;
}

}  // namespace

TEST(GgufReader, ReadsEveryFixtureFileAsLlamaCppWroteIt) {
  const auto ref = nlohmann::json::parse(std::ifstream(test::fixture("reference/public-gguf-dequant.json")));
  for (auto& [rel, tensors] : ref["files"].items()) {
    auto f = File::open(test::fixture(rel));
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    ASSERT_EQ(f->tensors().size(), tensors.size()) << rel;
    for (auto& t : tensors) {
      const TensorInfo* info = f->tensor(t["name"]);
      ASSERT_TRUE(info) << t["name"];
      EXPECT_TRUE(info->supported);
      EXPECT_EQ(ggml_type_name(info->ggml_type), [&] {
        std::string s = t["type"];
        for (char& c : s) c = char(std::tolower(c));
        return s;
      }());
      EXPECT_EQ(info->ne, t["ne"].get<std::vector<int64_t>>());
      EXPECT_EQ(size_t(info->data - f->map()->data()), t["offset"].get<size_t>()) << info->name;
      EXPECT_EQ(info->nbytes, t["n_bytes"].get<size_t>()) << info->name;
    }
  }
  for (const char* rel : {"gguf/qmix-q4_k_m.gguf", "gguf/qmix-q8_0.gguf", "gguf/tiny-llama3-bf16.gguf"}) {
    auto f = File::open(test::fixture(rel));
    EXPECT_GT(f->tensors().size(), 0u);
    EXPECT_GT(f->get_strings("tokenizer.ggml.tokens").size(), 30000u) << rel;
    EXPECT_TRUE(File::sniff(test::fixture(rel)));
  }
  EXPECT_FALSE(File::sniff(test::fixture("models/tiny-llama2/config.json")));
}

TEST(GgufReader, WriterRoundTripsEveryValueType) {
  Writer w = small_model();
  Value nested = array_of(ValueType::Array);
  for (int k = 0; k < 3; ++k) {
    Value inner = array_of(ValueType::I64);
    inner.ints = {k, -k, int64_t(1) << 40};
    nested.arrays.push_back(inner);
  }
  w.add("test.nested", nested);
  for (ValueType t : {ValueType::U8, ValueType::I8, ValueType::U16, ValueType::I16, ValueType::I32, ValueType::I64}) {
    Value v = scalar(t);
    v.i = 7;
    w.add(std::string("test.") + value_type_name(t), v);
  }
  Value u64 = scalar(ValueType::U64);
  u64.u = ~uint64_t(0);
  w.add("test.u64max", u64);
  Value f64 = scalar(ValueType::F64);
  f64.f = 0.1;
  w.add("test.f64", f64);

  auto f = parse(w.bytes());
  EXPECT_EQ(f->get_int("llama.block_count", 0, 10), 1);
  EXPECT_FLOAT_EQ(float(f->get_float("llama.attention.layer_norm_rms_epsilon", 0)), 1e-5f);
  EXPECT_EQ(f->get_strings("tokenizer.ggml.tokens"), (std::vector<std::string>{"<unk>", "a", "b"}));
  EXPECT_EQ(f->get_floats("tokenizer.ggml.scores"), (std::vector<double>{0, -1, -2}));
  EXPECT_TRUE(f->get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_EQ(f->find("test.nested")->arrays.at(2).ints.at(2), int64_t(1) << 40);
  EXPECT_EQ(f->get_int("test.i8", -10, 10), 7);
  EXPECT_EQ(f->find("test.u64max")->u, ~uint64_t(0));
  EXPECT_THROW(f->get_int("test.u64max", 0, 100), Error);
  EXPECT_EQ(f->get_float("test.f64", 0), 0.1);
  EXPECT_THROW(f->get_int("llama.block_count", 2, 10), Error);
  EXPECT_THROW(f->get_string("llama.block_count"), Error);
  EXPECT_THROW(f->get_strings("tokenizer.ggml.scores"), Error);
  EXPECT_THROW(f->get_string("missing.key"), Error);
  EXPECT_EQ(f->get_string("missing.key", "dflt"), "dflt");
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensor("b.weight")->dtype, DType::Q8_0);
  EXPECT_EQ(f->tensor("b.weight")->nbytes, 68u);
  EXPECT_EQ(f->tensor("b.weight")->numel(), 64);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_NE(value_summary(*f->find("tokenizer.ggml.tokens")).find("\"<unk>\""), std::string::npos);
}

TEST(GgufReader, EveryTruncationIsOneClearError) {
  const std::string full = small_model().bytes();
  // Up to the end of the last tensor's data (the writer's padding after it is not needed).
  const auto f = parse(full);
  const size_t end = f->data_offset() + f->tensor("b.weight")->offset + f->tensor("b.weight")->nbytes;
  for (size_t n = 0; n < end; ++n) {
    try {
      parse(full.substr(0, n));
      ADD_FAILURE() << "a file truncated to " << n << " of " << full.size() << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("mem.gguf"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(parse(full));
}

TEST(GgufReader, CorruptedCountsLengthsOffsetsTypesAndDims) {
  const std::string good = small_model().bytes();
  auto with = [&](auto edit) {
    std::string s = good;
    edit(s);
    return s;
  };
  expect_error(with([](std::string& s) { poke<uint32_t>(s, 0, 0x12345678); }), "not a GGUF file");
  expect_error(with([](std::string& s) { poke<uint32_t>(s, 4, 1); }), "version 1");
  expect_error(with([](std::string& s) { poke<uint64_t>(s, 8, uint64_t(1) << 63); }), "tensor count");
  expect_error(with([](std::string& s) { poke<uint64_t>(s, 16, uint64_t(1) << 40); }), "metadata count");
  // The first key's length (at byte 24) claims 2^40 bytes.
  expect_error(with([](std::string& s) { poke<uint64_t>(s, 24, uint64_t(1) << 40); }), "past the end");
  // The token array's length claims 2^62 strings.
  expect_error(with([&](std::string& s) {
                 poke<uint64_t>(s, find_bytes(s, "tokenizer.ggml.tokens") + 21 + 4, uint64_t(1) << 62);
               }),
               "more than the file can hold");
  // An unknown value type for the first key.
  expect_error(with([&](std::string& s) { poke<uint32_t>(s, find_bytes(s, "general.architecture") + 20, 99); }),
               "unknown metadata value type 99");
  // A bool that is neither 0 nor 1.
  expect_error(with([&](std::string& s) { s[find_bytes(s, "add_bos_token") + 13 + 4] = 2; }), "neither 0 nor 1");
  // Tensor "b.weight": its name, then n_dims (u32), ne0, ne1 (i64), type (u32), offset (u64).
  const size_t b = find_bytes(good, "b.weight") + 8;
  expect_error(with([&](std::string& s) { poke<uint32_t>(s, b, 0); }), "has 0 dimensions");
  expect_error(with([&](std::string& s) { poke<uint32_t>(s, b, 9); }), "has 9 dimensions");
  expect_error(with([&](std::string& s) { poke<int64_t>(s, b + 4, 0); }), "dimension 0 is 0");
  expect_error(with([&](std::string& s) { poke<int64_t>(s, b + 12, -5); }), "dimension 1 is -5");
  expect_error(with([&](std::string& s) { poke<int64_t>(s, b + 12, int64_t(1) << 62); }), "overflows");
  expect_error(with([&](std::string& s) { poke<int64_t>(s, b + 12, int64_t(1) << 40); }), "larger than the file");
  expect_error(with([&](std::string& s) { poke<int64_t>(s, b + 4, 33); }), "not a multiple of q8_0's block");
  expect_error(with([&](std::string& s) { poke<uint32_t>(s, b + 20, 77); }), "unknown tensor type 77");
  expect_error(with([&](std::string& s) { poke<uint64_t>(s, b + 24, 7); }), "not a multiple of the alignment");
  expect_error(with([&](std::string& s) { poke<uint64_t>(s, b + 24, uint64_t(1) << 40); }), "past the end of the file");
  expect_error(with([&](std::string& s) { poke<uint64_t>(s, b + 24, 0); }), "overlap");
  expect_error(with([&](std::string& s) { s.replace(find_bytes(s, "b.weight"), 8, "a.weight"); }), "appears twice");
  Writer dup = small_model();
  dup.add_u32("llama.block_count", 2);
  expect_error(dup.bytes(), "duplicate metadata key 'llama.block_count'");
  // A type camelid cannot run is listed, not refused, by the reader.
  Writer other;
  other.add_tensor("x", DType::Q8_0, {256}, std::vector<uint8_t>(8 * 34, 0));
  std::string iq = other.bytes();
  poke<uint32_t>(iq, find_bytes(iq, "x") + 1 + 4 + 8, 16);  // iq2_xxs: 66 bytes per 256
  auto f = parse(iq);
  EXPECT_FALSE(f->tensor("x")->supported);
  EXPECT_EQ(f->tensor("x")->nbytes, 66u);
}

TEST(GgufReader, HostileMetadataShapes) {
  // Arrays nested deeper than the limit.
  Value v = array_of(ValueType::I32);
  v.ints = {1};
  for (int d = 0; d < kMaxArrayDepth + 2; ++d) {
    Value outer = array_of(ValueType::Array);
    outer.arrays.push_back(v);
    v = outer;
  }
  Writer w;
  w.add("deep", v);
  expect_error(w.bytes(), "nested deeper");
  // Alignment that is not a power of two, or not a u32.
  Writer a = small_model();
  a.add_u32("general.alignment", 24);
  expect_error(a.bytes(), "general.alignment = 24");
  Writer a2 = small_model();
  a2.add_string("general.alignment", "32");
  expect_error(a2.bytes(), "must be a u32");
  // A different (valid) alignment is honoured.
  Writer a3(64);
  a3.add_u32("general.alignment", 64);
  a3.add_tensor("t", DType::F32, {3}, std::vector<uint8_t>(12, 0));
  a3.add_tensor("u", DType::F16, {5}, std::vector<uint8_t>(10, 0));
  auto f = parse(a3.bytes());
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->tensor("u")->offset, 64u);
}

TEST(GgufReader, MillionsOfKeysAndTensorsAreLinearWork) {
  // Each key and tensor name is checked against the others for duplicates: by index, not by
  // scanning (a scan is quadratic: 200,000 keys would be 2*10^10 string comparisons).
  Writer w;
  for (int k = 0; k < 200000; ++k) w.add_u32("k" + std::to_string(k), uint32_t(k));
  for (int k = 0; k < 100000; ++k) w.add_tensor("t" + std::to_string(k), DType::F32, {1}, std::vector<uint8_t>(4, 0));
  const std::string bytes = w.bytes();
  const auto t0 = std::chrono::steady_clock::now();
  auto f = parse(bytes);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(f->get_int("k199999", 0, 1 << 20), 199999);
  EXPECT_EQ(f->tensor("t99999")->offset, 99999u * 32);
  EXPECT_LT(secs, 10.0);
  w.add_u32("k7", 1);
  expect_error(w.bytes(), "duplicate metadata key 'k7'");
}
