// GBNF parsing (errors name line:column, limits hold) and the matcher on whole strings.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/error.h"
#include "runtime/grammar_match.h"
#include "runtime/grammar_parse.h"

using namespace camelid;
using namespace camelid::grammar;

namespace {

std::string parse_error(const std::string& text, const GrammarLimits& lim = {}) {
  try {
    parse_grammar(text, lim);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct G {
  explicit G(const std::string& text) : m(std::make_shared<const Grammar>(parse_grammar(text))) {}
  bool ok(const std::string& s) { return m.matches(s); }
  Matcher m;
};

}  // namespace

TEST(GrammarParse, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("root ::= \"a\"\nfoo ::= [a-\n"), "grammar: line 2, column 9: unterminated character class");
  EXPECT_NE(parse_error("root ::= \"abc").find("line 1, column 10: unterminated string literal"), std::string::npos);
  EXPECT_NE(parse_error("root ::= x").find("line 1, column 10: rule 'x' is used but not defined"), std::string::npos);
  EXPECT_NE(parse_error("a ::= \"x\"").find("no rule named 'root'"), std::string::npos);
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("root ::= (\"a\"").find("line 1, column 10: unclosed '('"), std::string::npos);
  EXPECT_NE(parse_error("root ::= * \"a\"").find("nothing to repeat"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"**").find("nothing to repeat"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"\\q\"").find("unknown escape"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{3,2}").find("maximum below its minimum"), std::string::npos);
  EXPECT_NE(parse_error("root ::= [z-a]").find("range ends below"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"\nroot ::= \"b\"").find("line 2, column 1: rule 'root' is defined twice"),
            std::string::npos);
  EXPECT_NE(parse_error("root ::= \"\\uD800\"").find("no Unicode character"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"\xff\"").find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(parse_error("root ::= ! ").find("unexpected character '!'"), std::string::npos);
}

TEST(GrammarParse, LeftRecursionIsRejected) {
  EXPECT_NE(parse_error("root ::= root \"a\" | \"a\"").find("rule 'root' is left-recursive"), std::string::npos);
  EXPECT_NE(parse_error("root ::= a\na ::= b? root\nb ::= \"x\"").find("left-recursive"), std::string::npos);
  EXPECT_NE(parse_error("root ::= (\"\")*").find("left-recursive"), std::string::npos);  // x* with x = ""
  EXPECT_EQ(parse_error("root ::= \"a\" root | \"\""), "");  // right recursion is fine
}

TEST(GrammarParse, LimitsHold) {
  GrammarLimits lim;
  lim.max_bytes = 100;
  EXPECT_NE(parse_error("root ::= \"" + std::string(200, 'a') + "\"", lim).find("exceed the limit"), std::string::npos);
  EXPECT_NE(parse_error("root ::= " + std::string(100, '(') + "\"a\"" + std::string(100, ')')).find("nested deeper"),
            std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{99999999999}").find("above the limit"), std::string::npos);
  // Repetitions of repetitions multiply: the lowered size is bounded.
  std::string many = "root ::=";
  for (int i = 0; i < 200; ++i) many += " \"a\"{10000}";
  EXPECT_NE(parse_error(many).find("elements"), std::string::npos);
  // Nested repetitions stay linear in size (each level is a rule).
  EXPECT_EQ(parse_error("root ::= ((((\"abcdefgh\"{10000}){10000}){10000}){10000})"), "");
  EXPECT_NE(parse_error("root ::= \"a\"{0,10000} \"b\"{0,10000} \"c\"{0,10000}").find("rules"), std::string::npos);
}

TEST(GrammarMatch, LiteralsClassesAndRepetitions) {
  G g(R"(# a comment
root ::= greeting " " name ("!" | "?")?   # trailing comment
greeting ::= "hello" | "hi"
name ::= [A-Z] [a-z]* )");
  EXPECT_TRUE(g.ok("hello World"));
  EXPECT_TRUE(g.ok("hi Bob!"));
  EXPECT_TRUE(g.ok("hi B?"));
  EXPECT_FALSE(g.ok("hi bob"));
  EXPECT_FALSE(g.ok("hello World!!"));
  EXPECT_FALSE(g.ok("hello"));
  EXPECT_FALSE(g.ok(""));

  G r("root ::= \"ab\"{2,3} [0-9]+ [^x]? .");
  EXPECT_TRUE(r.ok("abab1z"));
  EXPECT_TRUE(r.ok("ababab123yz"));
  EXPECT_FALSE(r.ok("ab1z"));
  EXPECT_FALSE(r.ok("abababab1z"));
  EXPECT_FALSE(r.ok("abab1xx"));
  EXPECT_TRUE(r.ok("abab1\xE2\x82\xAC"));  // "." is any code point, here a 3-byte one

  G e(R"(root ::= "\x41\u00e9\U0001F600" [\t\n\\\]] "\"" [^\x00-\x7f]{2})");
  EXPECT_TRUE(e.ok("A\xC3\xA9\xF0\x9F\x98\x80\t\"\xC3\xA9\xE4\xB8\xAD"));
  EXPECT_TRUE(e.ok("A\xC3\xA9\xF0\x9F\x98\x80]\"\xC3\xA9\xC3\xA9"));
  EXPECT_FALSE(e.ok("A\xC3\xA9\xF0\x9F\x98\x80]\"\xC3\xA9" "a"));

  G multi(R"(root ::= item ("," item){0,2}
item ::= "x" |
  "y")");
  EXPECT_TRUE(multi.ok("x,y,x"));
  EXPECT_FALSE(multi.ok("x,y,x,y"));
  EXPECT_FALSE(multi.ok("x,"));
}

TEST(GrammarMatch, Utf8IsCheckedByteByByte) {
  G g("root ::= [\\u00e0-\\u00ff]+");
  Matcher& m = g.m;
  Matcher::State s = m.step(m.start(), 0xC3);  // lead byte of U+00C0..U+00FF: some are allowed
  ASSERT_NE(s, Matcher::kDead);
  EXPECT_FALSE(m.accepting(s));  // half a character is never the end
  EXPECT_EQ(m.step(s, 0x80), Matcher::kDead);  // U+00C0 is below the range
  EXPECT_TRUE(m.accepting(m.step(s, 0xA9)));   // U+00E9
  EXPECT_EQ(m.step(m.start(), 0xC4), Matcher::kDead);  // U+0100.. is above it
  EXPECT_EQ(m.step(m.start(), 0xC0), Matcher::kDead);  // overlong
  EXPECT_EQ(m.step(m.start(), 0x80), Matcher::kDead);  // stray continuation byte
  G any("root ::= .*");
  EXPECT_FALSE(any.ok("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(any.ok("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_TRUE(any.ok("\xF4\x8F\xBF\xBF"));
}

TEST(GrammarMatch, NestingAndAcceptingStates) {
  G g(R"g(root ::= "(" root ")" root | "")g");
  EXPECT_TRUE(g.ok(""));
  EXPECT_TRUE(g.ok("(()())()"));
  EXPECT_FALSE(g.ok("(()"));
  EXPECT_FALSE(g.ok("())"));
  Matcher& m = g.m;
  EXPECT_TRUE(m.accepting(m.start()));
  EXPECT_FALSE(m.finished(m.start()));
  G fin("root ::= \"ab\"");
  EXPECT_TRUE(fin.m.finished(fin.m.advance(fin.m.start(), "ab")));
  EXPECT_FALSE(fin.m.finished(fin.m.advance(fin.m.start(), "a")));
}

TEST(GrammarMatch, CompactKeepsTheState) {
  MatcherLimits lim;
  lim.max_states = 8;
  Matcher m(std::make_shared<const Grammar>(parse_grammar(R"g(root ::= "[" root "]" | [a-z])g")), lim);
  Matcher::State s = m.start();
  for (int i = 0; i < 40; ++i) s = m.step(s, '[');
  EXPECT_TRUE(m.oversized());
  s = m.compact(s);
  EXPECT_LT(m.n_states(), 4u);
  s = m.advance(s, "x" + std::string(40, ']'));
  EXPECT_TRUE(m.accepting(s));
  EXPECT_TRUE(m.matches("[[x]]"));  // the start state survives compaction
}

TEST(GrammarMatch, AmbiguityIsBounded) {
  // Each "a" can be read two ways: the number of stacks would double per character.
  MatcherLimits lim;
  lim.max_stacks = 64;
  Matcher m(std::make_shared<const Grammar>(parse_grammar("root ::= x*\nx ::= \"a\" | \"a\" y\ny ::= \"\" | \"\"")), lim);
  EXPECT_TRUE(m.matches("aaaa"));
  const std::string long_text(5000, 'a');
  try {
    m.matches(long_text);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ambiguous"), std::string::npos);
  }
}

TEST(GrammarMatch, WorkIsBudgeted) {
  MatcherLimits lim;
  lim.max_work = 2000;
  Matcher m(std::make_shared<const Grammar>(parse_grammar(R"g(root ::= "(" root ")" | "")g")), lim);
  try {
    m.matches(std::string(5000, '('));  // a new state per byte, and the budget is never reset here
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too costly"), std::string::npos) << e.what();
  }
  m.reset_budget();
  EXPECT_TRUE(m.matches("(())"));
}
