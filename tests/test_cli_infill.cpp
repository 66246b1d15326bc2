// Code infill: FIM tokens from a Hugging Face tokenizer (Code Llama's ▁<PRE> ... at 32007-32010)
// or GGUF metadata, the prompt in Code Llama's layout, and `camelid infill` end to end.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "chat/infill_prompt.h"
#include "cli_runner.h"
#include "gguf_tokenizer_files.h"
#include "infill_model.h"
#include "model_files.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

namespace {

TEST(Infill, CodeLlamaPromptLayout) {
  TempDir dir;
  const auto tok = Tokenizer::load(code_llama_like(dir));
  const FimTokens f = find_fim_tokens(*tok);
  EXPECT_EQ(f.prefix, 32007);
  EXPECT_EQ(f.suffix, 32008);
  EXPECT_EQ(f.middle, 32009);
  EXPECT_EQ(f.eot, 32010);
  EXPECT_TRUE(f.code_llama);
  const std::vector<int> ids = infill_prompt(*tok, "def add(a, b):\n    return", "\n\nprint(add(1, 2))");
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids[0], 1);  // BOS
  EXPECT_EQ(ids[1], 32007);
  EXPECT_EQ(ids.back(), 32009);
  // "<PRE> {pre} <SUF>{suf} <MID>": the prefix gets SentencePiece's leading space, the suffix none.
  const size_t suf_at = size_t(std::find(ids.begin(), ids.end(), 32008) - ids.begin());
  ASSERT_LT(suf_at, ids.size());
  EXPECT_EQ(tok->token_text(ids[2]).rfind(kSp, 0), 0u) << tok->token_text(ids[2]);
  EXPECT_EQ(tok->token_text(ids[suf_at + 1]).rfind(kSp, 0), std::string::npos) << tok->token_text(ids[suf_at + 1]);
  EXPECT_EQ(tok->decode(std::vector<int>(ids.begin() + 2, ids.begin() + suf_at)), "def add(a, b):\n    return");
  EXPECT_EQ(tok->decode(std::vector<int>(ids.begin() + suf_at + 1, ids.end() - 1), false, true), "\n\nprint(add(1, 2))");
  // User text that spells a FIM token stays text.
  const std::vector<int> forged = infill_prompt(*tok, kSp + "<MID>", "<EOT>");
  EXPECT_EQ(std::count(forged.begin(), forged.end(), 32009), 1);
}

TEST(Infill, GgufFimKeysAndPlainFimTokens) {
  // GGUF: the ids the file names.
  GgufMeta m = tiny_sp_gguf();
  m.set("tokenizer.ggml.prefix_token_id", gguf_scalar(gguf::ValueType::U32, 3))
      .set("tokenizer.ggml.suffix_token_id", gguf_scalar(gguf::ValueType::U32, 4))
      .set("tokenizer.ggml.middle_token_id", gguf_scalar(gguf::ValueType::U32, 5))
      .set("tokenizer.ggml.eot_token_id", gguf_scalar(gguf::ValueType::U32, 6));
  GgufBytes g(m.bytes());
  const Tokenizer tok(tokenizer_spec_from_gguf(*g.file));
  FimTokens f = find_fim_tokens(tok);
  EXPECT_EQ(f.prefix, 3);
  EXPECT_EQ(f.suffix, 4);
  EXPECT_EQ(f.middle, 5);
  EXPECT_EQ(f.eot, 6);
  EXPECT_FALSE(f.code_llama);
  // Newer key names, and an id out of range is the file's error.
  GgufMeta m2 = tiny_sp_gguf();
  m2.set("tokenizer.ggml.fim_pre_token_id", gguf_scalar(gguf::ValueType::U32, 7))
      .set("tokenizer.ggml.fim_suf_token_id", gguf_scalar(gguf::ValueType::U32, 8))
      .set("tokenizer.ggml.fim_mid_token_id", gguf_scalar(gguf::ValueType::U32, 9));
  GgufBytes g2(m2.bytes());
  EXPECT_EQ(find_fim_tokens(Tokenizer(tokenizer_spec_from_gguf(*g2.file))).middle, 9);
  m2.set("tokenizer.ggml.fim_mid_token_id", gguf_scalar(gguf::ValueType::U32, 99999));
  GgufBytes g3(m2.bytes());
  EXPECT_THROW(tokenizer_spec_from_gguf(*g3.file), Error);
  // Without any: an error naming the model.
  GgufBytes plain(tiny_sp_gguf().bytes());
  expect_error([&] { infill_prompt(Tokenizer(tokenizer_spec_from_gguf(*plain.file)), "a", "b", "my-model.gguf"); },
               {"my-model.gguf", "no fill-in-the-middle tokens"});
}

TEST(CliInfill, GeneratesTheMiddleAndNamesAModelWithoutFim) {
  TempDir dir;
  const std::string model = q(code_llama_like(dir));
  auto r = run_camelid("infill -m " + model + " --prefix 'def f(x):' --suffix '  return y' -n 5 --temp 0 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["prompt_ids"][1], 32007);
  EXPECT_EQ(j["prompt_ids"].back(), 32009);
  EXPECT_LE(j["ids"].size(), 5u);
  // Text mode: the middle on stdout, the timings on stderr.
  const std::string pre = write_temp("infill-pre.py", "def f(x):");
  r = run_camelid("infill -m " + model + " --prefix-file " + q(pre) + " --suffix '  return y' -n 5 --temp 0", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("prompt eval: "), std::string::npos) << r.out;
  r = run_camelid("infill -m " + q(fixture("models/tiny-llama2")) + " --prefix a --suffix b", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.rfind("error: " + fixture("models/tiny-llama2") + ": the tokenizer has no fill-in-the-middle tokens", 0), 0u) << r.out;
}

}  // namespace
