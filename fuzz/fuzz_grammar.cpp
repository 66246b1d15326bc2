// GBNF grammars, JSON schemas and schema `pattern`s as a stranger may send them (`grammar`,
// `response_format`): the first byte's low two bits pick which (1: schema, 3: pattern, else
// GBNF); the text after the first "\n%%\n" is matched against the grammar byte by byte (the
// matcher's limits, UTF-8 handling, compaction). Any input must end in a result or a
// camelid::Error, within the parser's size and depth limits.
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"
#include "runtime/grammar_match.h"
#include "runtime/grammar_parse.h"
#include "runtime/json_schema_grammar.h"
#include "runtime/regex_grammar.h"

using namespace camelid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] & 3;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string input;
  if (auto sep = text.find("\n%%\n"); sep != std::string::npos) input = text.substr(sep + 4), text.resize(sep);
  try {
    grammar::GrammarLimits lim;
    lim.max_elems = 1 << 16, lim.max_rules = 4096, lim.max_repeat = 1000;  // keep each run fast
    const std::string gbnf = mode == 1   ? json_schema_text_to_grammar(text)
                             : mode == 3 ? "root ::= " + regex_to_json_string_gbnf(text) + "\n" + json_primitive_rules()
                                         : text;
    auto g = std::make_shared<const grammar::Grammar>(grammar::parse_grammar(gbnf, lim));
    grammar::MatcherLimits ml;
    ml.max_states = 64, ml.max_stacks = 256;
    grammar::Matcher m(g, ml);
    grammar::Matcher::State s = m.start();
    for (char c : input) {
      s = m.step(s, uint8_t(c));
      if (s == grammar::Matcher::kDead) break;
      if (m.oversized()) s = m.compact(s);
    }
    if (s != grammar::Matcher::kDead && m.finished(s) && !m.accepting(s)) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
