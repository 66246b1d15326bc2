// Structured output: what the token mask costs per generated token on the Llama 3.1 vocabulary
// (128,256 tokens), replaying a JSON document through the constraint as generation would: per
// token, mask() over the logits then accept(). Compare with a decode step of the model
// (`camelid bench -m DIR` on `gen-random --preset bench-450m`): the target is <= 10% of it.
//   ./build/bench/bench_grammar   (fixtures from $CAMELID_FIXTURES or ../shared/fixtures)
// BM_mask_json: mask + accept as in generation (recent states' masks are cached);
// BM_mask_json_patterns: the same document under a schema of patterns, formats and bounds;
// BM_walk_uncached: the trie walk alone at every position, no cache (the worst case per token);
// BM_build_vocab: building the trie (once per tokenizer, at the first constrained request).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "runtime/token_mask.h"
#include "server/structured_output.h"
#include "tokenizer/tokenizer.h"

using namespace camelid;

namespace {

std::string fixtures() {
  const char* env = std::getenv("CAMELID_FIXTURES");
  return env && *env ? env : CAMELID_FIXTURES_DEFAULT;
}

const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string"},"email":{"type":"string"},"age":{"type":"integer"},
  "tags":{"type":"array","items":{"type":"string"},"maxItems":8},
  "address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string"}},
             "required":["street","city"]},
  "active":{"type":"boolean"},"score":{"type":"number"}},
  "required":["name","email","age","tags","address","active","score"]})";

const char* kDoc = R"({"name": "Marie-Claire Dubois", "email": "marie.dubois@example.org", "age": 42,
 "tags": ["engineer", "climber", "amateur astronomer", "caf\u00e9 owner"],
 "address": {"street": "12 rue des Lilas", "city": "Lyon", "zip": "69003"},
 "active": true, "score": 87.25})";

// The same document, constrained by pattern / format / numeric bounds instead of bare types.
const char* kPatternSchema = R"({"type":"object","properties":{
  "name":{"type":"string","pattern":"^[A-Z][a-z]+(-[A-Z][a-z]+)?( [A-Z][a-z]+)+$"},
  "email":{"type":"string","format":"email"},"age":{"type":"integer","minimum":0,"maximum":150},
  "tags":{"type":"array","items":{"type":"string","pattern":"^[a-z\\u00e9 ]{1,40}$"},"maxItems":8},
  "address":{"type":"object","properties":{"street":{"type":"string","pattern":"\\d+ "},"city":{"type":"string"},
             "zip":{"type":"string","pattern":"^\\d{5}$"}},"required":["street","city"]},
  "active":{"type":"boolean"},"score":{"type":"number","minimum":0,"maximum":100}},
  "required":["name","email","age","tags","address","active","score"]})";

const char* kPatternDoc = R"({"name": "Marie-Claire Dubois", "email": "marie.dubois@example.org", "age": 42,
 "tags": ["engineer", "climber", "amateur astronomer", "café owner"],
 "address": {"street": "12 rue des Lilas", "city": "Lyon", "zip": "69003"},
 "active": true, "score": 87.25})";

struct Setup {
  std::unique_ptr<Tokenizer> tok;
  std::shared_ptr<const TokenVocab> vocab;
  std::shared_ptr<const grammar::Grammar> g;
  std::vector<int> ids;
};

Setup make_setup(const char* schema, const char* doc) {
  Setup x;
  x.tok = Tokenizer::load(fixtures() + "/tokenizers/llama3");
  x.vocab = grammar_vocab(*x.tok);
  x.g = grammar_from_schema_text(schema);
  x.ids = x.tok->encode(doc, false);
  return x;
}

const Setup& setup() {
  static Setup s = make_setup(kSchema, kDoc);
  return s;
}

void mask_and_accept(benchmark::State& st, const Setup& s) {
  std::vector<float> logits(size_t(s.vocab->size()), 0.5f);
  long tokens = 0;
  for (auto _ : st) {
    GrammarConstraint c(s.g, s.vocab, s.tok->eos_ids());  // fresh matcher: its tables start empty
    for (int id : s.ids) {
      c.mask(logits.data(), int(logits.size()));
      c.accept(id);
    }
    tokens += long(s.ids.size());
    if (!c.can_end()) st.SkipWithError("the document does not complete the grammar");
  }
  st.counters["s_per_token"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.SetItemsProcessed(tokens);
}

void BM_mask_json(benchmark::State& st) { mask_and_accept(st, setup()); }

void BM_mask_json_patterns(benchmark::State& st) {
  static Setup s = make_setup(kPatternSchema, kPatternDoc);
  mask_and_accept(st, s);
}

void BM_walk_uncached(benchmark::State& st) {
  const Setup& s = setup();
  grammar::Matcher m(s.g);
  std::vector<grammar::Matcher::State> states{m.start()};
  for (int id : s.ids) states.push_back(m.advance(states.back(), s.vocab->bytes(id)));
  states.pop_back();
  std::vector<uint64_t> bits;
  long walks = 0;
  for (auto _ : st) {
    for (auto state : states) s.vocab->allowed(m, state, bits);
    walks += long(states.size());
  }
  st.SetItemsProcessed(walks);
}

void BM_build_vocab(benchmark::State& st) {
  const Setup& s = setup();
  for (auto _ : st) benchmark::DoNotOptimize(grammar_vocab(*s.tok));
  st.counters["trie_nodes"] = double(s.vocab->trie_nodes());
}

}  // namespace

BENCHMARK(BM_mask_json)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mask_json_patterns)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_walk_uncached)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_build_vocab)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
