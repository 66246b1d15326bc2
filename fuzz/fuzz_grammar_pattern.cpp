// JSON Schema `pattern`s as a stranger may send them in `response_format`: the regular
// expression (up to the first "\n%%\n") becomes a grammar for JSON strings, and the text after
// it is matched against that grammar byte by byte. Any input must end in a result or a
// camelid::Error, within the grammar's size limits.
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
  std::string pattern(reinterpret_cast<const char*>(data), size);
  std::string input;
  if (auto sep = pattern.find("\n%%\n"); sep != std::string::npos) input = pattern.substr(sep + 4), pattern.resize(sep);
  try {
    grammar::GrammarLimits lim;
    lim.max_elems = 1 << 16, lim.max_rules = 4096;  // keep each run fast
    const std::string gbnf = "root ::= " + regex_to_json_string_gbnf(pattern) + "\n" + json_primitive_rules();
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
  } catch (const Error&) {
  }
  return 0;
}
