// JSON Schema -> grammar: each grammar accepts JSON that validates and rejects JSON that does not;
// unsupported keywords are errors naming where they are.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/grammar_match.h"
#include "runtime/grammar_parse.h"
#include "runtime/json_schema_grammar.h"

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
  for (const SchemaCase& c : cases) {
    SCOPED_TRACE(c.schema);
    grammar::Matcher m = matcher_for(c.schema);
    for (const auto& s : c.good) EXPECT_TRUE(m.matches(s)) << "should accept " << s;
    for (const auto& s : c.bad) EXPECT_FALSE(m.matches(s)) << "should reject " << s;
  }
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
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a":{"type":"string","pattern":"^x"}}})")
                .find("json_schema: #/properties/a/pattern: the keyword 'pattern' is not supported"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"number","maximum":3})").find("#/maximum"), std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref":"http://x/y"})").find("#/$ref"), std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref":"#/$defs/nope"})").find("names no definition"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"strin"})").find("unknown type 'strin'"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"string","format":"email"})").find("#/format"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a":{}},"required":["b"]})").find("'b'"), std::string::npos);
  EXPECT_NE(schema_error("false").find("accepts nothing"), std::string::npos);
  EXPECT_NE(schema_error("[1,").find("json_schema"), std::string::npos);
  // A definition that is only a reference to itself would loop: the grammar check catches it.
  EXPECT_NE(schema_error(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})"), "");
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += R"({"type":"array","items":)";
  deep += "{}" + std::string(100, '}');
  EXPECT_EQ(schema_error(deep), "");  // deep but within the JSON depth limit
}
