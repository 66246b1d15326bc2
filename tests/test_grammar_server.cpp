// Structured output through the front ends: `response_format` and `grammar` on the server (valid
// output for every seed, 400 naming the field for a bad schema or grammar) and
// `camelid generate --json-schema / --grammar-file`.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "cli_runner.h"
#include "fixtures.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

ServerProcess& grammar_server() {
  static ServerProcess s("-m '" + fixture("models/tiny-llama3") + "' --parallel 4 --ctx 512 --threads 2");
  return s;
}

httplib::Result post(const std::string& path, const json& body) {
  httplib::Client c("127.0.0.1", grammar_server().port());
  c.set_read_timeout(120, 0);
  return c.Post(path.c_str(), body.dump(), "application/json");
}

const json kSchema = json::parse(R"({"type":"object","properties":{
  "city":{"type":"string","maxLength":6},"pop":{"type":"integer"},"big":{"type":"boolean"}},
  "required":["city","pop","big"],"additionalProperties":false})");

}  // namespace

TEST(GrammarServer, JsonSchemaResponsesValidate) {
  for (int seed : {1, 2, 3, 4}) {
    json body = {{"messages", {{{"role", "user"}, {"content", "A city?"}}}},
                 {"max_tokens", 200}, {"temperature", 1.5}, {"seed", seed},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "c"}, {"schema", kSchema}, {"strict", true}}}}}};
    auto r = post("/v1/chat/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json resp = json::parse(r->body);
    const std::string content = resp["choices"][0]["message"]["content"];
    EXPECT_EQ(resp["choices"][0]["finish_reason"], "stop") << content;
    json v;
    ASSERT_NO_THROW(v = json::parse(content)) << content;
    EXPECT_TRUE(v["city"].is_string() && v["pop"].is_number_integer() && v["big"].is_boolean() && v.size() == 3) << content;
  }
}

TEST(GrammarServer, PatternsBoundsAndTuplesValidate) {
  const json schema = json::parse(R"({"type":"object","properties":{
    "code":{"type":"string","pattern":"^[A-Z]{3}-\\d{2}(\\.[a-z]{1,3})?$"},
    "n":{"type":"integer","minimum":-20,"exclusiveMaximum":7},
    "p":{"type":"number","minimum":0,"maximum":1},
    "pair":{"type":"array","prefixItems":[{"type":"string","format":"ipv4"},{"type":"boolean"}],"items":false}},
    "required":["code","n","p","pair"]})");
  for (int seed : {1, 2, 3, 4}) {
    json body = {{"messages", {{{"role", "user"}, {"content", "A record?"}}}},
                 {"max_tokens", 300}, {"temperature", 1.5}, {"seed", seed},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "r"}, {"schema", schema}, {"strict", true}}}}}};
    auto r = post("/v1/chat/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json resp = json::parse(r->body);
    const std::string content = resp["choices"][0]["message"]["content"];
    EXPECT_EQ(resp["choices"][0]["finish_reason"], "stop") << content;  // every part is bounded
    json v;
    ASSERT_NO_THROW(v = json::parse(content)) << content;
    EXPECT_TRUE(std::regex_match(v["code"].get<std::string>(), std::regex(R"([A-Z]{3}-\d{2}(\.[a-z]{1,3})?)"))) << content;
    EXPECT_TRUE(v["n"].is_number_integer() && v["n"] >= -20 && v["n"] < 7) << content;
    EXPECT_TRUE(v["p"].is_number() && v["p"] >= 0 && v["p"] <= 1) << content;
    EXPECT_TRUE(v["pair"].size() == 2 && v["pair"][1].is_boolean()) << content;
  }
}

TEST(GrammarServer, JsonObjectAndGrammarFields) {
  auto r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 300},
                                         {"seed", 7}, {"response_format", {{"type", "json_object"}}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string content = json::parse(r->body)["choices"][0]["message"]["content"];
  if (json::parse(r->body)["choices"][0]["finish_reason"] == "stop") EXPECT_TRUE(json::parse(content).is_object()) << content;
  else EXPECT_EQ(content.substr(0, 1), "{");  // a random model may still be inside a string at max_tokens

  for (int seed : {1, 2, 3}) {
    auto g = post("/v1/completions", {{"prompt", "Answer:"}, {"max_tokens", 10}, {"seed", seed}, {"temperature", 1.5},
                                      {"grammar", "root ::= (\"yes\" | \"no\") \".\""}});
    ASSERT_TRUE(g);
    ASSERT_EQ(g->status, 200) << g->body;
    const std::string text = json::parse(g->body)["choices"][0]["text"];
    EXPECT_TRUE(text == "yes." || text == "no.") << text;
  }
}

TEST(GrammarServer, BadSchemaOrGrammarIs400NamingTheField) {
  auto bad = [](const json& extra, const std::string& param, const std::string& words) {
    json body = {{"prompt", "x"}, {"max_tokens", 4}};
    body.update(extra);
    auto r = post("/v1/completions", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    const json e = json::parse(r->body)["error"];
    EXPECT_EQ(e["param"], param) << r->body;
    EXPECT_NE(e["message"].get<std::string>().find(words), std::string::npos) << r->body;
  };
  bad({{"grammar", "root ::= \"a\"\nb ::= [x"}}, "grammar", "line 2, column 7: unterminated character class");
  bad({{"grammar", 5}}, "grammar", "must be a string");
  bad({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", {{"type", "integer"}, {"multipleOf", 3}}}}}}}},
      "response_format.json_schema.schema", "multipleOf");
  bad({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", {{"type", "string"}, {"pattern", "(a)\\1"}}}}}}}},
      "response_format.json_schema.schema", "back-references");
  bad({{"response_format", {{"type", "xml"}}}}, "response_format.type", "json_schema");
  bad({{"response_format", "json"}}, "response_format", "object");
}

TEST(GrammarServer, GenerateCommandFlags) {
  const std::string model = q(fixture("models/tiny-llama3"));
  for (int seed : {1, 2}) {
    CmdResult r = run_camelid("generate -m " + model + " -p 'Data:' -n 200 --temp 1.5 --seed " + std::to_string(seed) +
                              " --json --json-schema " + q(kSchema.dump()));
    ASSERT_EQ(r.status, 0) << r.out;
    const json out = json::parse(r.out);
    json v;
    ASSERT_NO_THROW(v = json::parse(out["text"].get<std::string>())) << r.out;
    EXPECT_EQ(v.size(), 3u) << r.out;
  }
  const std::string g = write_temp("g.gbnf", "root ::= [0-9]{3} \"!\"\n");
  CmdResult r = run_camelid("generate -m " + model + " -p 'N:' -n 10 --seed 3 --json --grammar-file " + q(g));
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string text = json::parse(r.out)["text"];
  EXPECT_EQ(text.size(), 4u) << text;
  EXPECT_EQ(text.back(), '!');
  const std::string broken = write_temp("b.gbnf", "root ::= (\"a\"\n");
  r = run_camelid("generate -m " + model + " -p 'N:' -n 10 --grammar-file " + q(broken), true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: " + broken + ": grammar: line 1, column 10: unclosed '('"), std::string::npos) << r.out;
}
