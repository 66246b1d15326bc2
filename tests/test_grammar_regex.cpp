// JSON Schema `pattern` -> grammar, against the C++ standard library's ECMAScript regex as the
// oracle: for every string over a small alphabet, the grammar accepts the string's JSON text
// exactly when std::regex_search finds the pattern in it.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/grammar_match.h"
#include "runtime/grammar_parse.h"
#include "runtime/json_schema_grammar.h"
#include "runtime/regex_grammar.h"

using namespace camelid;

namespace {

grammar::Matcher pattern_matcher(const std::string& pattern) {
  const std::string g = "root ::= " + regex_to_json_string_gbnf(pattern) + "\n" + json_primitive_rules();
  return grammar::Matcher(std::make_shared<const grammar::Grammar>(grammar::parse_grammar(g)));
}

// Every string of up to max_len code points over the alphabet.
std::vector<std::u32string> strings_over(const std::u32string& alphabet, size_t max_len) {
  std::vector<std::u32string> out = {U""};
  for (size_t begin = 0, len = 1; len <= max_len; ++len) {
    const size_t end = out.size();
    for (size_t i = begin; i < end; ++i)
      for (char32_t c : alphabet) out.push_back(out[i] + c);
    begin = end;
  }
  return out;
}

std::string as_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) out += char(c);
    else if (c < 0x800) out += char(0xC0 | (c >> 6)), out += char(0x80 | (c & 0x3F));
    else out += char(0xE0 | (c >> 12)), out += char(0x80 | ((c >> 6) & 0x3F)), out += char(0x80 | (c & 0x3F));
  }
  return out;
}

std::string pattern_error(const std::string& pattern) {
  try {
    regex_to_json_string_gbnf(pattern);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(GrammarRegex, AgreesWithEcmaScriptSearch) {
  struct Case {
    std::u32string pattern;
    std::u32string alphabet;
    size_t max_len;
    std::u32string oracle = U"";  // the same language in what libstdc++'s regex accepts, where it differs
  };
  // Alphabets hold the characters each pattern cares about, one it does not, and the characters
  // JSON must escape where the pattern could let them through.
  const std::vector<Case> cases = {
      {U"^abc$", U"abcx", 4},
      {U"abc", U"abcx", 5},
      {U"^a", U"ab\"", 4},
      {U"b$", U"ab\\", 4},
      {U"^(ab|c)+$", U"abcx", 5},
      {U"^a*b?c{2}$", U"abcx", 5},
      {U"^a{2,3}$", U"ab", 5},
      {U"^(?:a|bc){1,}$", U"abc", 5},
      {U"^x{0}y$", U"xy", 3},
      {U"^[a-c]+-[^a-c\\s]$", U"ab-x \n\"", 4},
      {U"^\\d{2}\\.\\d$", U"0.9a", 4},
      {U"^\\w\\W\\s\\S$", U"a_ \t-\n", 4},
      {U"^\\D+$", U"0a.\t", 3},
      {U"^.$", U"a\n\r\t\"\\\x01", 1},
      {U"^[^\"]*$", U"a\"\\", 4},
      {U"^[\\\\\"/]+$", U"\\\"/a", 3},
      {U"^[\\]\\[-]$", U"[]-a", 2},
      {U"^\\x41\\u0042\\t$", U"AB\t", 3},
      {U"^(a|)b$", U"ab", 3},
      {U"^a|b$", U"abc", 3},
      {U"^a|^b|c$", U"abcd", 3},
      {U"^(?<x>ab)?$", U"ab", 3, U"^(ab)?$"},  // libstdc++ has no named groups
      {U"^a+?b*?$", U"ab", 4},
      {U"^[\\d-x]$", U"5-xa", 2, U"^[\\d\\-x]$"},  // nor Annex B's [\d-x]
      {U"a}", U"a}", 3, U"a\\}"},  // Annex B: a brace that is no count is itself
      {U"^a{x$", U"a{x", 3, U"^a\\{x$"},
      {U"^\\cJ$", U"\na", 1, U"^\\n$"},  // ECMA-262: J % 32 = 10
      {U"^[\\b]$", U"\ba", 1},
      {U"", U"ab", 2},
      {U"^$", U"a", 1},
      {U"^\\$\\^\\(\\)\\*$", U"$^()*", 5},
      {U"^[é-ü]é$", U"éüaë", 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("pattern " + as_utf8(c.pattern));
    grammar::Matcher m = pattern_matcher(as_utf8(c.pattern));
    const std::u32string oracle = c.oracle.empty() ? c.pattern : c.oracle;
    const std::wregex re(std::wstring(oracle.begin(), oracle.end()), std::regex::ECMAScript);
    int matched = 0, strings = 0;
    for (const std::u32string& s : strings_over(c.alphabet, c.max_len)) {
      const std::wstring ws(s.begin(), s.end());
      const bool want = std::regex_search(ws, re);
      const std::string text = nlohmann::json(as_utf8(s)).dump();
      EXPECT_EQ(m.matches(text), want) << "string " << text;
      matched += want, ++strings;
    }
    // Each case tells strings apart (only the empty pattern matches everything).
    if (!c.pattern.empty()) {
      EXPECT_TRUE(matched > 0 && matched < strings);
    }
  }
}

TEST(GrammarRegex, WritesCanonicalEscapesOnly) {
  grammar::Matcher m = pattern_matcher("^.$");
  EXPECT_TRUE(m.matches(R"("\"")"));
  EXPECT_TRUE(m.matches(R"("\\")"));
  EXPECT_TRUE(m.matches(R"("\t")"));
  EXPECT_TRUE(m.matches(R"("\u0001")"));
  EXPECT_TRUE(m.matches(R"("\u001B")"));
  EXPECT_FALSE(m.matches(R"("\n")"));  // '.' stops at line terminators
  EXPECT_FALSE(m.matches(R"("\u0061")"));  // 'a' is written as itself
  EXPECT_FALSE(m.matches("\"\t\""));      // a raw control character is not JSON
  EXPECT_FALSE(m.matches("\"\xE2\x80\xA8\""));  // U+2028 is a line terminator
}

TEST(GrammarRegex, RefusesWhatItCannotEnforce) {
  for (const char* p : {"(a)\\1", "a(?=b)", "a(?!b)", "(?<=a)b", "\\bword", "a^b", "a$b", "(^a)", "(a$)", "\\p{L}",
                        "a{,3}", "a**", "*a", "a{2}{3}", "[b-a]", "[a", "(a", "a)", "\\", "a{1001}", "[^\\s\\S]",
                        "\\uD800", "\\u{41}", "\\q", "\\01"}) {
    SCOPED_TRACE(p);
    const std::string e = pattern_error(p);
    EXPECT_NE(e.find("pattern '"), std::string::npos) << e;
  }
  EXPECT_EQ(pattern_error("\xff"), "pattern: invalid UTF-8 at byte 0");
  EXPECT_NE(pattern_error(std::string(5000, 'a')).find("longer than 4096"), std::string::npos);
  // Through the schema: the error names where the pattern is.
  try {
    json_schema_text_to_grammar(R"({"type":"object","properties":{"id":{"type":"string","pattern":"(a)\\1"}}})");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("#/properties/id/pattern: pattern '(a)\\1' at offset 3: back-references"),
              std::string::npos)
        << e.what();
  }
}

TEST(GrammarRegex, NestedCountsShareRules) {
  // A group's rule is referenced, not copied: 1000 x 1000 stays small.
  const std::string g = "root ::= " + regex_to_json_string_gbnf("^(a{1000}){1000}$") + "\n" + json_primitive_rules();
  EXPECT_NO_THROW(grammar::parse_grammar(g));
  grammar::Matcher m = pattern_matcher("^(ab{2}){3}$");
  EXPECT_TRUE(m.matches(R"("abbabbabb")"));
  EXPECT_FALSE(m.matches(R"("abbabb")"));
}
