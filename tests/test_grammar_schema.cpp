// JSON Schema -> grammar: each grammar accepts JSON that validates and rejects JSON that does not;
// unsupported keywords are errors naming where they are.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "runtime/grammar_match.h"
#include "runtime/json_number_ranges.h"
#include "runtime/grammar_parse.h"
#include "runtime/json_schema_grammar.h"
#include "fixtures.h"

using namespace camelid;

namespace {

grammar::Matcher matcher_for(const std::string& schema) {
  return grammar::Matcher(std::make_shared<const grammar::Grammar>(grammar::parse_grammar(json_schema_text_to_grammar(schema))));
}

struct SchemaCase {
  std::string schema;
  std::vector<std::string> good, bad;
};

std::string schema_error(const std::string& schema) {
  try {
    grammar::parse_grammar(json_schema_text_to_grammar(schema));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_cases(const std::vector<SchemaCase>& cases) {
  for (const SchemaCase& c : cases) {
    SCOPED_TRACE(c.schema);
    grammar::Matcher m = matcher_for(c.schema);
    for (const auto& s : c.good) EXPECT_TRUE(m.matches(s)) << "should accept " << s;
    for (const auto& s : c.bad) EXPECT_FALSE(m.matches(s)) << "should reject " << s;
  }
}

// (schema, a part of the error message it must give)
void expect_errors(const std::vector<std::pair<std::string, std::string>>& errors) {
  for (const auto& [schema, message] : errors) EXPECT_NE(schema_error(schema).find(message), std::string::npos) << schema << ": " << schema_error(schema);
}

}  // namespace

TEST(GrammarSchema, AcceptsValidAndRejectsInvalid) {
  const std::vector<SchemaCase> cases = {
      {R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false})",
       {R"({"name":"Bob","age":42})", "{ \"name\" : \"A\\\"\\u00e9\" ,\n  \"age\": -7 }", R"({"name":"","age":0})"},
       {R"({"age":42,"name":"Bob"})", R"({"name":"Bob"})", R"({"name":"Bob","age":4.5})", R"({"name":"Bob","age":42,"x":1})",
        R"({"name":Bob,"age":42})", R"({"name":"Bob","age":042})", "{\"name\":\"a\nb\",\"age\":1}"}},
      {R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"number"}}})",
       {"{}", R"({"a":true})", R"({"b":null})", R"({"a":false,"c":1.5e10})", R"({"a":true,"b":null,"c":-0.25})", R"({"c":3})"},
       {R"({"b":null,"a":true})", R"({,"a":true})", R"({"a":true,})", R"({"c":1.})", R"({"a":1})"}},
      {R"({"type":"array","items":{"enum":["red","green",3,null]},"minItems":1,"maxItems":3})",
       {R"(["red"])", R"(["green", 3, null])", R"([null,null])"},
       {"[]", R"(["blue"])", R"(["red","red","red","red"])", R"(["red",])"}},
      {R"({"anyOf":[{"type":"string","maxLength":3},{"type":"integer","minimum":0}]})",
       {R"("abc")", R"("")", "12"},
       {R"("abcd")", "-1", "1.5", "true"}},
      {R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"})",
       {R"({"v":1})", R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]})"},
       {R"({"kids":[]})", R"({"v":1,"kids":[{"x":2}]})"}},
      {R"({"type":"object","properties":{"k":{"const":{"x":[1,2]}},"t":{"type":["string","null"]},"d":{"type":"string","format":"date"}},"required":["k","t","d"]})",
       {R"({"k":{"x":[1,2]},"t":null,"d":"2024-02-29"})", R"({"k":{"x":[1,2]},"t":"s","d":"1999-12-31"})"},
       {R"({"k":{"x":[1,3]},"t":null,"d":"2024-02-29"})", R"({"k":{"x":[1,2]},"t":1,"d":"2024-02-29"})",
        R"({"k":{"x":[1,2]},"t":null,"d":"2024-13-01"})"}},
      {R"({"type":"object","additionalProperties":{"type":"integer"}})",
       {"{}", R"({"a":1,"b":2})"},
       {R"({"a":"x"})"}},
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"required":["b"]})",
       {R"({"b":1})", R"({"a":1,"b":2})", R"({"b":2,"c":3})", R"({"a":1,"b":2,"c":3})"},
       {R"({"a":1})", R"({"a":1,"c":3})", "{}", R"({"c":3,"b":2})"}},
      {"{}", {"1", R"({"any":[true,{"x":"y"}]})", "\"s\""}, {"tru", "{"}},
  };
  expect_cases(cases);
}

TEST(GrammarSchema, JsonObjectIsAnyObject) {
  grammar::Matcher m(std::make_shared<const grammar::Grammar>(grammar::parse_grammar(json_object_grammar())));
  EXPECT_TRUE(m.matches(R"({"a":[1,{"b":null}],"c":"\n"})"));
  EXPECT_TRUE(m.matches("{}"));
  EXPECT_FALSE(m.matches("[]"));
  EXPECT_FALSE(m.matches("{} "));
  EXPECT_FALSE(m.matches(R"({"a":1)"));
}

TEST(GrammarSchema, WhitespaceIsBounded) {
  grammar::Matcher m(std::make_shared<const grammar::Grammar>(grammar::parse_grammar(json_object_grammar())));
  EXPECT_TRUE(m.matches("{\n" + std::string(20, ' ') + "}"));
  EXPECT_FALSE(m.matches("{\n" + std::string(21, ' ') + "}"));
  EXPECT_FALSE(m.matches("{  }"));
}

TEST(GrammarSchema, UnsupportedIsAnErrorNamingThePlace) {
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a":{"type":"integer","if":{}}}})")
                .find("json_schema: #/properties/a/if: the keyword 'if' is not supported"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"integer","multipleOf":2})").find("#/multipleOf: multipleOf 2 is not supported"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"number","multipleOf":0.25})").find("#/multipleOf"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"number","maximum":1e20})").find("#/maximum: bounds beyond"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"integer","minimum":1e300})").find("#/minimum: bounds beyond"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"integer","minimum":5,"maximum":4})").find("no number lies within"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"integer","exclusiveMinimum":true})").find("true needs minimum"), std::string::npos);
  EXPECT_NE(schema_error(R"({"minimum":0})").find("#/minimum: 'minimum' needs a 'type'"), std::string::npos);
  EXPECT_NE(schema_error(R"({"maxLength":3})").find("needs a 'type'"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"string","pattern":"a","maxLength":3})").find("#/pattern"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"array","prefixItems":[{}],"items":false,"minItems":2})").find("#/minItems"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref":"http://x/y"})").find("#/$ref"), std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref":"#/$defs/nope"})").find("names no definition"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"strin"})").find("unknown type 'strin'"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"string","format":"uri"})").find("#/format"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a":{}},"required":["b"]})").find("'b'"), std::string::npos);
  EXPECT_NE(schema_error("false").find("accepts nothing"), std::string::npos);
  EXPECT_NE(schema_error(R"x({"anyOf":[{"type":"string","pattern":"(?=a)"},{"not":{}}]})x").find("#/anyOf/0/pattern"),
            std::string::npos);  // no alternative left: the first one's error
  EXPECT_NE(schema_error("[1,").find("json_schema"), std::string::npos);
  // A definition that is only a reference to itself would loop: the grammar check catches it.
  EXPECT_NE(schema_error(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})"), "");
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += R"({"type":"array","items":)";
  deep += "{}" + std::string(100, '}');
  EXPECT_EQ(schema_error(deep), "");  // deep but within the JSON depth limit
}

namespace {

// Whether a bound admits v: lo <= v (lo < v when exclusive), and the same for hi.
bool within(double v, const std::optional<NumberBound>& lo, const std::optional<NumberBound>& hi) {
  if (lo && (lo->exclusive ? v <= double(lo->value) : v < double(lo->value))) return false;
  if (hi && (hi->exclusive ? v >= double(hi->value) : v > double(hi->value))) return false;
  return true;
}

grammar::Matcher range_matcher(const std::string& expr) {
  return grammar::Matcher(std::make_shared<const grammar::Grammar>(grammar::parse_grammar("root ::= " + expr + "\n")));
}

using Bounds = std::vector<std::pair<std::optional<NumberBound>, std::optional<NumberBound>>>;

// For a failure message: "lo<=v<hi" and the like.
std::string bounds_text(const std::optional<NumberBound>& lo, const std::optional<NumberBound>& hi) {
  return (lo ? std::to_string(lo->value) + (lo->exclusive ? "<" : "<=") : std::string("")) + "v" +
         (hi ? (hi->exclusive ? "<" : "<=") + std::to_string(hi->value) : std::string(""));
}

}  // namespace

TEST(GrammarSchema, NaturalRangesAreExact) {
  for (auto [a, b] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 0}, {0, 9}, {3, 7}, {0, 10}, {7, 13}, {10, 99}, {19, 1000}, {100, 999}, {101, 198}, {0, 1234}, {987, 2001}, {5, 5}}) {
    SCOPED_TRACE(std::to_string(a) + ".." + std::to_string(b));
    grammar::Matcher m = range_matcher(natural_range_gbnf(a, b));
    for (uint64_t n = 0; n <= 2500; ++n) EXPECT_EQ(m.matches(std::to_string(n)), n >= a && n <= b) << n;
    EXPECT_FALSE(m.matches("0" + std::to_string(a)));  // no leading zeros
  }
  grammar::Matcher big = range_matcher(natural_range_gbnf(12345678901234ULL, 9999999999999999ULL));
  EXPECT_TRUE(big.matches("12345678901234"));
  EXPECT_TRUE(big.matches("9999999999999999"));
  EXPECT_FALSE(big.matches("12345678901233"));
  EXPECT_FALSE(big.matches("10000000000000000"));
}

TEST(GrammarSchema, IntegerBoundsAreExact) {
  const Bounds bounds = {
      {NumberBound{0}, {}}, {{}, NumberBound{-1}}, {NumberBound{-17}, NumberBound{250}}, {NumberBound{1}, NumberBound{12}},
      {NumberBound{-1000, true}, NumberBound{-99, true}}, {NumberBound{0, true}, {}}, {{}, NumberBound{0, true}},
      {NumberBound{-5}, NumberBound{-5}}, {NumberBound{99}, NumberBound{1001, true}}, {{}, NumberBound{37}}};
  for (const auto& [lo, hi] : bounds) {
    SCOPED_TRACE(bounds_text(lo, hi));
    grammar::Matcher m = range_matcher(number_range_gbnf(lo, hi, 0));
    for (int v = -1300; v <= 1300; ++v) EXPECT_EQ(m.matches(std::to_string(v)), within(v, lo, hi)) << v;
    EXPECT_FALSE(m.matches("-0"));
    EXPECT_FALSE(m.matches("1.0"));
    EXPECT_FALSE(m.matches("1e2"));
  }
}

TEST(GrammarSchema, NumberBoundsAreExact) {
  const Bounds bounds = {
      {NumberBound{0}, NumberBound{1}}, {NumberBound{0, true}, {}}, {NumberBound{-3, true}, NumberBound{2, true}},
      {{}, NumberBound{-2}}, {NumberBound{-10}, NumberBound{-1, true}}, {NumberBound{5}, {}}, {{}, NumberBound{0, true}}};
  std::vector<std::string> texts;  // integer parts 0..10 of either sign, each with these fractions
  for (int w = 0; w <= 10; ++w)
    for (const char* sign : {"", "-"})
      for (const char* f : {"", ".0", ".00", ".25", ".5", ".75", ".001"}) texts.push_back(sign + std::to_string(w) + f);
  for (const auto& [lo, hi] : bounds) {
    SCOPED_TRACE(bounds_text(lo, hi));
    grammar::Matcher m = range_matcher(number_range_gbnf(lo, hi, 16));
    for (const std::string& t : texts) {
      if (t == "-0" || t == "-0.0" || t == "-0.00") continue;  // "-0" is zero: either answer validates
      EXPECT_EQ(m.matches(t), within(std::stod(t), lo, hi)) << t;
    }
    EXPECT_FALSE(m.matches("1e0"));
  }
  EXPECT_THROW(number_range_gbnf(NumberBound{1, true}, NumberBound{1}, 16), Error);
  EXPECT_NO_THROW(number_range_gbnf(NumberBound{1}, NumberBound{1}, 16));
}

TEST(GrammarSchema, BoundsTuplesAndFormats) {
  const std::vector<SchemaCase> cases = {
      {R"({"type":"object","properties":{"age":{"type":"integer","minimum":0,"maximum":150},"p":{"type":"number","minimum":0,"maximum":1}},"required":["age","p"]})",
       {R"({"age":0,"p":0})", R"({"age":150,"p":1.0})", R"({"age":42,"p":0.125})"},
       {R"({"age":151,"p":0})", R"({"age":-1,"p":0})", R"({"age":1,"p":1.5})", R"({"age":1,"p":-0.5})", R"({"age":1,"p":1e-1})"}},
      {R"({"type":"integer","exclusiveMinimum":0.5,"exclusiveMaximum":3})", {"1", "2"}, {"0", "3", "-1"}},
      {R"({"type":"number","multipleOf":0.01,"minimum":0})", {"0", "12.5", "3.99", "7.00"}, {"1.001", "-1", "0.125"}},
      {R"({"type":"number","multipleOf":0.1})", {"-3.5", "2", "-0.1"}, {"1.25", "1e3"}},
      {R"({"type":"number","multipleOf":1,"maximum":3})", {"3", "-7"}, {"2.5", "4"}},
      {R"({"type":"integer","minimum":2,"exclusiveMinimum":true,"maximum":4.9})", {"3", "4"}, {"2", "5"}},
      {R"({"type":["integer","null"],"maximum":-1})", {"-1", "-200", "null"}, {"0", "5"}},
      {R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})",
       {R"(["a",1])", R"([ "a" , 1 ])"}, {R"(["a"])", R"(["a",1,2])", R"([1,"a"])", "[]"}},
      {R"({"type":"array","prefixItems":[{"type":"boolean"}],"items":{"type":"integer"},"minItems":3,"maxItems":4})",
       {"[true,1,2]", "[false,1,2,3]"}, {"[true,1]", "[true,1,2,3,4]", "[1,2,3]"}},
      {R"({"type":"array","items":[{"const":"x"}],"additionalItems":false})", {R"(["x"])"}, {"[]", R"(["x","x"])"}},
      {R"({"type":"array","items":false})", {"[]"}, {"[1]"}},
      // pydantic's Decimal: the string branch's lookahead cannot be enforced, the number branch can.
      {R"({"anyOf":[{"type":"number"},{"type":"string","pattern":"^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"}]})",
       {"1.5", "-2"}, {R"("1.5")"}},
      // A left-out alternative leaves nothing behind: its $ref is generated afresh where used.
      {R"({"$defs":{"d":{"type":"integer","maximum":5}},"anyOf":[{"type":"array","prefixItems":[{"$ref":"#/$defs/d"}],
          "items":false,"minItems":3},{"$ref":"#/$defs/d"}]})",
       {"5", "-3"}, {"6", "[1]", "[1,2,3]"}},
      {R"({"prefixItems":[{"type":"null"}]})", {"[null]", "[null,1]"}, {"[1]", "null", "{}"}},
      {R"({"type":"string","pattern":"^[A-Z]{3}-\\d{4}$"})", {R"("ABC-1234")"}, {R"("AB-1234")", R"("abc-1234")", R"("ABC-12345")"}},
      {R"({"type":"string","format":"ipv4"})", {R"("192.168.0.1")", R"("255.255.255.255")", R"("0.0.0.0")"},
       {R"("256.1.1.1")", R"("01.1.1.1")", R"("1.1.1")"}},
      {R"({"type":"string","format":"ipv6"})", {R"("2001:db8:0:0:0:0:0:1")"}, {R"("2001:db8::1:2:3:4:5:6:7")", R"("12345:0:0:0:0:0:0:1")"}},
      {R"({"type":"string","format":"hostname"})", {R"("example.com")", R"("a-b.c")", R"("x")"}, {R"("-a.com")", R"("a..b")", R"("a.")"}},
      {R"({"type":"string","format":"email"})", {R"("a.b+c@example.com")"}, {R"("a@")", R"("@b.c")", R"("a b@c.d")", R"(".a@b.c")"}},
  };
  expect_cases(cases);
}

TEST(GrammarSchema, PropertyCountsNamesAndPatterns) {
  const std::vector<SchemaCase> cases = {
      // minProperties: the first optional properties become required.
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"minProperties":2})",
       {R"({"a":1,"b":2})", R"({"a":1,"b":2,"c":3})"}, {"{}", R"({"a":1})", R"({"c":1})"}},
      // maxProperties: the last optional properties are left out.
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"required":["b"],"maxProperties":2})",
       {R"({"b":1})", R"({"a":1,"b":2})"}, {R"({"a":1,"b":2,"c":3})", R"({"a":1})"}},
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"maxProperties":0})", {"{}"}, {R"({"a":1})"}},
      {R"({"type":"object","additionalProperties":{"type":"integer"},"minProperties":1,"maxProperties":2})",
       {R"({"a":1})", R"({"a":1,"b":2})"}, {"{}", R"({"a":1,"b":2,"c":3})", R"({"a":"x"})"}},
      {R"({"type":"object","propertyNames":{"pattern":"^[a-z]+$"},"additionalProperties":{"type":"integer"}})",
       {"{}", R"({"ab":1,"c":2})"}, {R"({"A":1})", R"({"a1":1})", R"({"":1})"}},
      {R"({"type":"object","propertyNames":{"maxLength":2}})", {R"({"ab":[1]})", R"({"":null})"}, {R"({"abc":1})"}},
      {R"({"type":"object","propertyNames":{"enum":["x","y"]}})", {R"({"x":1,"y":true})"}, {R"({"z":1})"}},
      {R"({"type":"object","patternProperties":{"^S_":{"type":"string"}},"additionalProperties":false})",
       {"{}", R"({"S_a":"x","S_":"y"})"}, {R"({"S_a":1})", R"({"a":"x"})"}},
      {R"({"type":"object","patternProperties":{"\\d":{"type":"boolean"}},"maxProperties":1})",
       {R"({"a1b":true})"}, {R"({"ab":true})", R"({"1":true,"2":false})"}},
      {R"({"patternProperties":{"^x":{"type":"null"}}})", {R"({"xa":null})"}, {"1", R"({"ya":null})"}},
  };
  expect_cases(cases);
  const std::vector<std::pair<std::string, std::string>> errors = {
      {R"({"type":"object","additionalProperties":true,"minProperties":2})", "#/minProperties: above 1"},
      {R"({"type":"object","additionalProperties":false,"minProperties":1})", "#/minProperties: needs properties"},
      {R"({"type":"object","properties":{"a":{}},"minProperties":2})", "#/minProperties: needs more properties"},
      {R"({"type":"object","properties":{"a":{},"b":{}},"required":["a","b"],"maxProperties":1})", "#/maxProperties: is below the number"},
      {R"({"type":"object","minProperties":3,"maxProperties":2})", "#/maxProperties: is below minProperties"},
      {R"({"type":"object","patternProperties":{"a":{},"b":{}}})", "#/patternProperties: only one pattern"},
      {R"x({"type":"object","patternProperties":{"(?=a)":{}}})x", "#/patternProperties/(?=a)"},
      {R"({"type":"object","properties":{"a":{}},"propertyNames":{"maxLength":3}})", "#/propertyNames: 'propertyNames' beside"},
      {R"({"type":"object","propertyNames":{"type":"integer"}})", "#/propertyNames/type: names are strings"},
      {R"({"type":"object","propertyNames":{"enum":["a",1]}})", "#/propertyNames/enum: names are strings, not 1"},
      {R"({"type":"object","propertyNames":{"not":{}}})", "#/propertyNames/not"},
      {R"({"minProperties":1})", "#/minProperties: 'minProperties' needs a 'type'"},
  };
  expect_errors(errors);
}

TEST(GrammarSchema, FractionalBoundsAreExact) {
  EXPECT_EQ(parse_number_bound("-2.5", false).value, -3);
  EXPECT_EQ(parse_number_bound("-2.5", false).fraction, "5");
  EXPECT_EQ(parse_number_bound("-0.001", true).fraction, "999");
  EXPECT_EQ(parse_number_bound("-0.001", true).value, -1);
  EXPECT_EQ(parse_number_bound("1e-3", false).fraction, "001");
  EXPECT_EQ(parse_number_bound("12.50", false).fraction, "5");
  EXPECT_EQ(parse_number_bound("1.5E+2", false).value, 150);
  EXPECT_EQ(parse_number_bound("-0.0", false).value, 0);
  for (const char* bad : {"abc", "1e99999", "", "-", "1e", "1e-", "1e+-2", "2e16", "1.2.3", "1x"}) EXPECT_THROW(parse_number_bound(bad, false), Error) << bad;
  // (lower, upper) as decimal text, "" for none, a leading '(' / trailing ')' for exclusive.
  const std::vector<std::pair<std::string, std::string>> bounds = {
      {"0.25", "0.75"}, {"(-2.5", "3.125"}, {"", "-0.5)"}, {"0.001", ""}, {"(0.2", "0.25)"}, {"-1.75", "-1.25"},
      {"(0.249", "0.2501)"}, {"2.5", "2.5"}, {"(-0.75", "0.999)"}, {"-3.1", "0"}};
  std::vector<std::string> texts;  // integer parts 0..4 of either sign, each with these fractions
  for (int w = 0; w <= 4; ++w)
    for (const char* sign : {"", "-"})
      for (const char* f : {"", ".0", ".001", ".1", ".125", ".2", ".25", ".2500", ".2501", ".249", ".5", ".75", ".76", ".999", ".9990"})
        texts.push_back(sign + std::to_string(w) + f);
  for (const auto& [lo_text, hi_text] : bounds) {
    SCOPED_TRACE(lo_text + ".." + hi_text);
    std::optional<NumberBound> lo, hi;
    const bool lo_open = !lo_text.empty() && lo_text[0] == '(', hi_open = !hi_text.empty() && hi_text.back() == ')';
    const std::string l = lo_text.substr(lo_open), h = hi_text.substr(0, hi_text.size() - hi_open);
    if (!l.empty()) lo = parse_number_bound(l, lo_open);
    if (!h.empty()) hi = parse_number_bound(h, hi_open);
    grammar::Matcher m = range_matcher(number_range_gbnf(lo, hi, 16));
    for (const std::string& t : texts) {
      if (std::stod(t) == 0 && t[0] == '-') continue;  // "-0" is zero: either answer validates
      const double v = std::stod(t);
      const bool in = (l.empty() || (lo_open ? v > std::stod(l) : v >= std::stod(l))) &&
                      (h.empty() || (hi_open ? v < std::stod(h) : v <= std::stod(h)));
      EXPECT_EQ(m.matches(t), in) << t;
    }
  }
  // With at most 2 decimals (multipleOf 0.01), 0.255 admits 0.26 but not 0.25 or 0.255.
  grammar::Matcher cents = range_matcher(number_range_gbnf(parse_number_bound("0.255", false), std::nullopt, 2));
  EXPECT_TRUE(cents.matches("0.26"));
  EXPECT_TRUE(cents.matches("1"));
  EXPECT_FALSE(cents.matches("0.25"));
  EXPECT_FALSE(cents.matches("0.255"));
  // Beside an exclusive bound, at most 15 significant digits: a longer text could read back as
  // the bound itself.
  grammar::Matcher above0 = range_matcher(number_range_gbnf(NumberBound{0, true}, std::nullopt, 16));
  EXPECT_TRUE(above0.matches("0.000000000000001"));
  EXPECT_FALSE(above0.matches("0.0000000000000001"));
  grammar::Matcher below = range_matcher(number_range_gbnf(std::nullopt, NumberBound{1000000, true}, 16));
  EXPECT_TRUE(below.matches("999999.999999999"));
  EXPECT_FALSE(below.matches("999999.9999999999"));
  grammar::Matcher at_least0 = range_matcher(number_range_gbnf(NumberBound{0}, std::nullopt, 16));
  EXPECT_TRUE(at_least0.matches("0.0000000000000001"));
  // Through a schema: the bound is the decimal the schema wrote.
  grammar::Matcher p = matcher_for(R"({"type":"number","exclusiveMinimum":0.1,"maximum":0.3})");
  for (const char* t : {"0.2", "0.3", "0.10001", "0.30"}) EXPECT_TRUE(p.matches(t)) << t;
  for (const char* t : {"0.1", "0.3001", "0.05", "1"}) EXPECT_FALSE(p.matches(t)) << t;
}

TEST(GrammarSchema, UniqueItemsOnListedValues) {
  // Every array of up to 4 items over 4 values (one outside the enum), against the definition.
  // 1 and 1.0 are one value (the first spelling is the one written).
  const std::vector<std::string> vals = {"\"a\"", "\"b\"", "1", "\"z\""};
  for (const auto& [lo, hi] : std::vector<std::pair<int, int>>{{0, 99}, {1, 2}, {2, 3}, {0, 1}}) {
    std::string schema = R"({"type":"array","items":{"enum":["a","b",1,1.0]},"uniqueItems":true,"minItems":)" +
                         std::to_string(lo) + (hi < 99 ? ",\"maxItems\":" + std::to_string(hi) : "") + "}";
    SCOPED_TRACE(schema);
    grammar::Matcher m = matcher_for(schema);
    std::vector<std::vector<int>> arrays = {{}};
    for (size_t i = 0; i < arrays.size(); ++i)
      if (arrays[i].size() < 4)
        for (int v = 0; v < 4; ++v) {
          arrays.push_back(arrays[i]);
          arrays.back().push_back(v);
        }
    for (const auto& a : arrays) {
      std::string text = "[";
      bool valid = int(a.size()) >= lo && int(a.size()) <= hi;
      for (size_t i = 0; i < a.size(); ++i) {
        text += (i ? ", " : "") + vals[size_t(a[i])];
        valid = valid && a[i] != 3 && std::count(a.begin(), a.begin() + long(i), a[i]) == 0;
      }
      text += "]";
      EXPECT_EQ(m.matches(text), valid) << text;
    }
  }
  const std::vector<SchemaCase> cases = {
      {R"({"type":"array","items":{"type":"boolean"},"uniqueItems":true})", {"[]", "[true]", "[false, true]"}, {"[true, true]", "[1]"}},
      {R"({"type":"array","items":{"$ref":"#/$defs/c"},"uniqueItems":true,"$defs":{"c":{"type":"string","enum":["r","g",2]}}})",
       {R"(["g","r"])"}, {R"(["r","r"])", "[2]"}},  // 2 is no string
      {R"({"type":"array","items":{"anyOf":[{"const":1},{"type":"null"}]},"uniqueItems":true,"minItems":2})", {"[null,1]", "[1,null]"}, {"[1]", "[null,null]"}},
      {R"({"type":"array","items":{"oneOf":[{"enum":[1,2]},{"enum":[2,3]}]},"uniqueItems":true})", {"[3,1]"}, {"[2]"}},
      {R"({"type":"array","items":{"type":"string"},"uniqueItems":true,"maxItems":1})", {"[]", R"(["x"])"}, {R"(["x","y"])"}},
      {R"({"type":"array","items":{"type":"string"},"uniqueItems":false})", {R"(["x","x"])"}, {}},
  };
  expect_cases(cases);
  const std::vector<std::pair<std::string, std::string>> errors = {
      {R"({"type":"array","items":{"type":"string"},"uniqueItems":true})", "#/uniqueItems: uniqueItems is supported on items of at most 8 listed"},
      {R"({"type":"array","uniqueItems":true})", "#/uniqueItems: uniqueItems is supported"},
      {R"({"type":"array","items":{"enum":[1,2,3,4,5,6,7,8,9]},"uniqueItems":true})", "#/uniqueItems: uniqueItems is supported"},
      {R"({"type":"array","items":{"enum":[1,2]},"uniqueItems":true,"minItems":3})", "#/minItems: is above the 2 distinct values"},
      {R"({"type":"array","prefixItems":[{"const":1}],"items":{"const":2},"uniqueItems":true})", "#/uniqueItems: uniqueItems beside 'prefixItems'"},
      {R"({"type":"array","items":{"enum":[1],"not":{}},"uniqueItems":true})", "#/items/not"},
      {R"({"type":"array","items":{"enum":[1]},"uniqueItems":"yes"})", "#/uniqueItems: must be a boolean"},
      {R"({"uniqueItems":true})", "#/uniqueItems: 'uniqueItems' needs a 'type'"},
      {R"({"enum":[[1,1]],"uniqueItems":true})", "#/uniqueItems: uniqueItems beside 'enum'"},
      // A stranger's schema: 2^32 paths through anyOfs of $refs, 65 values before deduplication.
      {R"({"type":"array","items":{"$ref":"#/$defs/a"},"uniqueItems":true,"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"}]}}})",
       "#/uniqueItems: uniqueItems is supported"},
      {R"({"type":"array","items":{"enum":[1)" + test::repeat(",1", 64) + R"(]},"uniqueItems":true})", "#/uniqueItems: uniqueItems is supported"},
  };
  expect_errors(errors);
}
