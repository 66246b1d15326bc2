// Token masks on the real Llama 3.1 (128K, byte-level) and Llama 2 (32K, SentencePiece) vocabularies:
// the trie walk equals checking every token alone, partial UTF-8 characters carry across tokens,
// end tokens only when the grammar is complete, and random models generating under a JSON schema
// always produce JSON that validates.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "fixtures.h"
#include "model/llama.h"
#include "model/weights.h"
#include "runtime/session.h"
#include "runtime/token_mask.h"
#include "server/structured_output.h"
#include "tokenizer/tokenizer.h"

using namespace camelid;
using ojson = nlohmann::ordered_json;

namespace {

struct Vocab {
  std::unique_ptr<Tokenizer> tok;
  std::shared_ptr<const TokenVocab> vocab;
};

const Vocab& llama3_vocab() {
  static Vocab v = [] {
    Vocab x{Tokenizer::load(test::fixture("tokenizers/llama3")), nullptr};
    x.vocab = grammar_vocab(*x.tok);
    return x;
  }();
  return v;
}
const Vocab& llama2_vocab() {
  static Vocab v = [] {
    Vocab x{Tokenizer::load(test::fixture("tokenizers/llama2/tokenizer.json")), nullptr};
    x.vocab = grammar_vocab(*x.tok);
    return x;
  }();
  return v;
}

bool bit(const std::vector<uint64_t>& b, int i) { return (b[size_t(i) >> 6] >> (i & 63)) & 1; }

// The trie walk must find exactly the tokens that fit when each is tried alone.
void expect_walk_equals_brute_force(const Vocab& v, const std::string& gbnf, const std::vector<std::string>& prefixes) {
  auto g = grammar_from_gbnf(gbnf);
  for (const std::string& p : prefixes) {
    SCOPED_TRACE("after '" + p + "'");
    grammar::Matcher m(g);
    const grammar::Matcher::State s = m.advance(m.start(), p);
    ASSERT_NE(s, grammar::Matcher::kDead);
    std::vector<uint64_t> bits;
    v.vocab->allowed(m, s, bits);
    int n_allowed = 0, mismatches = 0;
    for (int id = 0; id < v.vocab->size(); ++id) {
      const bool fits = v.vocab->usable(id) && m.advance(s, v.vocab->bytes(id)) != grammar::Matcher::kDead;
      n_allowed += fits;
      if (fits != bit(bits, id) && ++mismatches < 5) ADD_FAILURE() << "token " << id << " walk " << bit(bits, id);
    }
    EXPECT_EQ(mismatches, 0);
    EXPECT_GT(n_allowed, 0);
  }
}

// A validator for the schema subset the generation test uses.
bool validates(const ojson& v, const ojson& s) {
  if (s.contains("enum")) {
    for (const auto& e : s["enum"])
      if (e == v) return true;
    return false;
  }
  const std::string t = s.value("type", "");
  if (t == "object") {
    if (!v.is_object()) return false;
    const ojson& props = s["properties"];
    size_t last = 0;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!props.contains(it.key())) return false;
      size_t idx = 0;  // declared order
      for (auto p = props.begin(); p != props.end() && p.key() != it.key(); ++p) ++idx;
      if (idx < last) return false;
      last = idx;
      if (!validates(it.value(), props[it.key()])) return false;
    }
    for (const auto& r : s.value("required", ojson::array()))
      if (!v.contains(r.get<std::string>())) return false;
    return true;
  }
  if (t == "array") {
    if (!v.is_array() || v.size() < s.value("minItems", 0u) || v.size() > s.value("maxItems", 1000000u)) return false;
    for (const auto& x : v)
      if (!validates(x, s["items"])) return false;
    return true;
  }
  if (t == "string") return v.is_string() && v.get<std::string>().size() <= s.value("maxLength", 1000000u) * 4;
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  return false;
}

}  // namespace

TEST(GrammarMask, TrieWalkEqualsTokenByTokenLlama3) {
  const std::string json = R"(root ::= "{" ws "\"k\"" ws ":" ws ( [0-9]+ | "\"" [^"]* "\"" ) ws "}"
ws ::= [ \n]{0,4})";
  expect_walk_equals_brute_force(llama3_vocab(), json, {"", "{ \"k\":", "{\"k\":12", "{\"k\":\"x\xC3"});
}

TEST(GrammarMask, TrieWalkEqualsTokenByTokenLlama2) {
  expect_walk_equals_brute_force(llama2_vocab(), "root ::= [a-z ]* \"\xE2\x82\xAC\"? \".\"", {"", "ab c", "x\xE2", "x\xE2\x82"});
}

TEST(GrammarMask, PartialUtf8CarriesAcrossTokens) {
  const Vocab& v = llama3_vocab();
  // Byte-level vocabularies have one token per byte: é (C3 A9) can come as two tokens.
  const int c3 = v.tok->token_id("\xC3\x83"), a9 = v.tok->token_id("\xC2\xA9"), c4 = v.tok->token_id("\xC3\x84");
  ASSERT_GE(c3, 0);
  ASSERT_GE(a9, 0);
  ASSERT_GE(c4, 0);
  ASSERT_EQ(v.vocab->bytes(c3), "\xC3");
  GrammarConstraint c(grammar_from_gbnf("root ::= \"\xC3\xA9!\""), v.vocab, v.tok->eos_ids());
  EXPECT_TRUE(bit(c.allowed(), c3));
  EXPECT_FALSE(bit(c.allowed(), c4));
  c.accept(c3);
  EXPECT_FALSE(c.can_end());
  EXPECT_TRUE(bit(c.allowed(), a9));
  EXPECT_FALSE(bit(c.allowed(), c3));
  EXPECT_THROW(c.accept(c3), Error);
  c.accept(a9);
  c.accept(v.tok->token_id("!"));
  EXPECT_TRUE(c.can_end());
}

TEST(GrammarMask, EndTokensOnlyWhenComplete) {
  const Vocab& v = llama3_vocab();
  const std::vector<int> ends = v.tok->eos_ids();
  ASSERT_FALSE(ends.empty());
  GrammarConstraint c(grammar_from_gbnf("root ::= \"ab\" \"c\"?"), v.vocab, ends);
  std::vector<float> logits(size_t(v.vocab->size()) + 10, 1.0f);  // the model may have more rows than the tokenizer
  c.mask(logits.data(), int(logits.size()));
  for (int e : ends) EXPECT_TRUE(std::isinf(logits[size_t(e)]));
  EXPECT_TRUE(std::isinf(logits.back()));
  EXPECT_EQ(logits[size_t(v.tok->token_id("ab"))], 1.0f);
  EXPECT_THROW(c.accept(ends[0]), Error);
  c.accept(v.tok->token_id("ab"));
  std::fill(logits.begin(), logits.end(), 1.0f);
  c.mask(logits.data(), int(logits.size()));
  for (int e : ends) EXPECT_EQ(logits[size_t(e)], 1.0f);
  EXPECT_EQ(logits[size_t(v.tok->token_id("c"))], 1.0f);
  EXPECT_TRUE(std::isinf(logits[size_t(v.tok->token_id("ab"))]));
  c.accept(v.tok->token_id("c"));
  std::fill(logits.begin(), logits.end(), 1.0f);
  c.mask(logits.data(), int(logits.size()));
  int finite = 0;
  for (float x : logits) finite += !std::isinf(x);
  EXPECT_EQ(finite, int(ends.size()));  // only the end remains
  // Complete but nothing to end with: an error, not a silent pick of a masked token.
  GrammarConstraint no_end(grammar_from_gbnf("root ::= \"ab\""), v.vocab, {});
  no_end.accept(v.tok->token_id("ab"));
  EXPECT_THROW(no_end.mask(logits.data(), int(logits.size())), Error);
}

TEST(GrammarMask, GenerationUnderASchemaValidates) {
  const std::vector<std::string> schemas = {
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer"},"ok":{"type":"boolean"}},"required":["name","age"]})",
      R"({"type":"array","items":{"type":"object","properties":{"c":{"enum":["red","green"]},"x":{"type":"number"}},"required":["c"]},"minItems":1,"maxItems":3})",
  };
  struct M {
    const char* dir;
    const Vocab& (*vocab)();
  };
  for (const M& mdl : {M{"models/tiny-llama3", llama3_vocab}, M{"models/tiny-llama2", llama2_vocab}}) {
    Llama model(std::shared_ptr<const ModelWeights>(load_model(test::fixture(mdl.dir))));
    const Vocab& v = mdl.vocab();
    const std::vector<int> prompt = v.tok->encode("The answer as JSON:");
    for (const std::string& schema_text : schemas) {
      const ojson schema = ojson::parse(schema_text);
      auto g = grammar_from_schema_text(schema_text);
      for (uint64_t seed : {1u, 2u}) {
        SCOPED_TRACE(std::string(mdl.dir) + " seed " + std::to_string(seed) + " " + schema_text);
        Session s(model, 1024);
        GenerateOptions opt;
        opt.max_new_tokens = 400;
        opt.sampling.temperature = 1.5f;  // wander: the mask, not the model, must keep it valid
        opt.sampling.top_k = 0, opt.sampling.top_p = 1, opt.sampling.min_p = 0;
        opt.sampling.seed = seed;
        opt.constraint = std::make_shared<GrammarConstraint>(g, v.vocab, model.config().eos_ids);
        const GenerateResult r = generate(s, prompt, opt);
        std::string text;
        for (int id : r.ids) text += v.vocab->bytes(id);
        EXPECT_EQ(r.finish_reason, "stop") << text;
        ojson out;
        ASSERT_NO_THROW(out = ojson::parse(text)) << text;
        EXPECT_TRUE(validates(out, schema)) << text;
      }
    }
  }
}
