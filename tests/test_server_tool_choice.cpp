// tool_choice "required" and a named function enforced by a grammar: a random-weight model can
// only write calls of the offered functions, in its template's format, with arguments that match
// their schemas; "none" offers no tools; an unknown name is a 400.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "model_files.h"
#include "runtime/grammar_match.h"
#include "server/structured_output.h"
#include "server/tool_calls.h"
#include "server/tool_choice.h"
#include "server_process.h"

using namespace camelid;
using namespace camelid::test;
using ojson = nlohmann::ordered_json;

namespace {

const ojson kTools = ojson::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
   "parameters": {"type": "object", "properties": {"unit": {"enum": ["c", "f"]},
     "days": {"type": "integer", "minimum": 0}, "exact": {"type": "boolean"}}, "required": ["unit", "days"]}}},
  {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
   "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 5}}, "required": ["zone"]}}},
  {"type": "function", "function": {"name": "ping"}}])");

// The arguments of a call of `name` validate against kTools' schema.
void expect_valid_args(const std::string& name, const std::string& arguments) {
  ojson a;
  ASSERT_NO_THROW(a = ojson::parse(arguments)) << arguments;
  ASSERT_TRUE(a.is_object()) << arguments;
  if (name == "get_weather") {
    EXPECT_TRUE(a["unit"] == "c" || a["unit"] == "f") << arguments;
    EXPECT_TRUE(a["days"].is_number_integer() && a["days"].get<long long>() >= 0) << arguments;
    EXPECT_TRUE(!a.contains("exact") || a["exact"].is_boolean()) << arguments;
    EXPECT_LE(a.size(), 3u) << arguments;
  } else if (name == "get_time") {
    EXPECT_TRUE(a["zone"].is_string() && a.size() == 1) << arguments;
  } else if (name == "ping") {
    EXPECT_TRUE(a.empty()) << arguments;
  } else {
    ADD_FAILURE() << "unknown function " << name;
  }
}

struct Server {
  ServerProcess proc;
  explicit Server(const std::string& model) : proc("-m '" + model + "' --parallel 2 --ctx 1024 --threads 2") {}
  httplib::Result post(const ojson& body) {
    httplib::Client c("127.0.0.1", proc.port());
    c.set_read_timeout(120, 0);
    return c.Post("/v1/chat/completions", body.dump(), "application/json");
  }
};

Server& llama3() {  // tiny-llama3: random weights, Llama 3.1's template (JSON calls)
  static Server s(fixture("models/tiny-llama3"));
  return s;
}

ojson request(const ojson& tool_choice, int seed, bool parallel = true) {
  return {{"messages", {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}},
          {"tools", kTools}, {"tool_choice", tool_choice}, {"parallel_tool_calls", parallel},
          {"max_tokens", 400}, {"temperature", 1.5}, {"seed", seed}};
}

// Every choice of the response is one or more calls (all named `only` when given), valid args.
ojson expect_calls(Server& s, const ojson& body, const std::string& only, size_t max_calls) {
  auto r = s.post(body);
  ojson resp;
  [&] {
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  resp = ojson::parse(r->body);
  const ojson& choice = resp["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls") << r->body;
  const ojson& calls = choice["message"]["tool_calls"];
  ASSERT_TRUE(calls.is_array() && !calls.empty()) << r->body;
  EXPECT_LE(calls.size(), max_calls) << r->body;
  for (const ojson& c : calls) {
    const std::string name = c["function"]["name"];
    if (!only.empty()) {
      EXPECT_EQ(name, only) << r->body;
    }
    expect_valid_args(name, c["function"]["arguments"]);
  }
  }();
  return resp;
}

}  // namespace

TEST(ToolChoice, GrammarAcceptsEachFormatsCallAndParsesBack) {
  using tools::CallFormat;
  const std::vector<std::string> names = {"get_weather", "get_time", "ping"};
  const std::pair<CallFormat, std::string> cases[] = {
      {CallFormat::LlamaJson, R"({"name": "get_time", "parameters": {"zone": "UTC"}}; {"name": "ping", "parameters": {}})"},
      {CallFormat::Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\", \"days\": 3}}\n</tool_call>"},
      {CallFormat::FunctionTag, R"(<function=get_time>{"zone": "CET"}</function>)"}};
  for (auto& [format, text] : cases) {
    grammar::Matcher m(grammar_from_gbnf(tools::tool_choice_grammar(kTools, format, true)));
    EXPECT_TRUE(m.matches(text)) << text;
    auto parsed = tools::parse_tool_calls(text, names);
    ASSERT_FALSE(parsed.calls.empty()) << text;
    for (auto& c : parsed.calls) expect_valid_args(c.name, c.arguments);
    // Wrong arguments, an undeclared function and plain text are refused.
    EXPECT_FALSE(m.matches(R"({"name": "get_weather", "parameters": {"unit": "k", "days": 1}})"));
    EXPECT_FALSE(m.matches(R"({"name": "rm_rf", "parameters": {}})"));
    EXPECT_FALSE(m.matches("Sure, here is the weather."));
  }
  // One call only without parallel calls.
  grammar::Matcher one(grammar_from_gbnf(tools::tool_choice_grammar(kTools, CallFormat::LlamaJson, false)));
  EXPECT_TRUE(one.matches(R"({"name": "ping", "parameters": {}})"));
  EXPECT_FALSE(one.matches(R"({"name": "ping", "parameters": {}}; {"name": "ping", "parameters": {}})"));
  // A schema the grammar cannot enforce still gets a JSON object of arguments.
  ojson odd = ojson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
    "properties": {"s": {"type": "integer", "multipleOf": 2}}}}}])");
  grammar::Matcher any(grammar_from_gbnf(tools::tool_choice_grammar(odd, CallFormat::LlamaJson, false)));
  EXPECT_TRUE(any.matches(R"({"name": "f", "parameters": {"x": [1, 2]}})"));
  EXPECT_EQ(tools::call_format("{{ '<tool_call>' }}"), CallFormat::Hermes);
  EXPECT_EQ(tools::call_format("<function={{ name }}>"), CallFormat::FunctionTag);
  EXPECT_EQ(tools::call_format("{\"name\": function name, \"parameters\": ...}"), CallFormat::LlamaJson);
}

TEST(ToolChoice, RequiredAlwaysCallsADeclaredFunction) {
  for (int seed : {1, 2, 3, 4}) expect_calls(llama3(), request("required", seed, seed % 2 == 0), "", seed % 2 == 0 ? 8 : 1);
}

TEST(ToolChoice, NamedFunctionIsTheOnlyOneCalled) {
  for (const char* name : {"get_weather", "get_time", "ping"})
    for (int seed : {5, 6})
      expect_calls(llama3(), request({{"type", "function"}, {"function", {{"name", name}}}}, seed, false), name, 1);
}

TEST(ToolChoice, StreamedRequiredCallsArriveAsToolCallDeltas) {
  ojson body = request({{"type", "function"}, {"function", {{"name", "get_weather"}}}}, 9, false);
  body["stream"] = true;
  httplib::Client c("127.0.0.1", llama3().proc.port());
  c.set_read_timeout(120, 0);
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string name, args, finish;
  size_t at = 0;
  while ((at = r->body.find("data: {", at)) != std::string::npos) {
    const size_t end = r->body.find("\n\n", at);
    const ojson j = ojson::parse(r->body.substr(at + 6, end - at - 6));
    at = end;
    const ojson& ch = j["choices"][0];
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
    if (ch["delta"].contains("tool_calls"))
      for (const ojson& d : ch["delta"]["tool_calls"]) {
        if (d["function"].contains("name")) name += d["function"]["name"].get<std::string>();
        if (d["function"].contains("arguments")) args += d["function"]["arguments"].get<std::string>();
      }
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(name, "get_weather");
  expect_valid_args("get_weather", args);
}

TEST(ToolChoice, UnknownNameIs400NamingIt) {
  auto r = llama3().post(request({{"type", "function"}, {"function", {{"name", "launch_rockets"}}}}, 1));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  const ojson e = ojson::parse(r->body)["error"];
  EXPECT_EQ(e["param"], "tool_choice");
  EXPECT_NE(e["message"].get<std::string>().find("'launch_rockets'"), std::string::npos) << r->body;
  // Combined with structured output: a 400, not a silent choice between them.
  ojson both = request("required", 1);
  both["response_format"] = {{"type", "json_object"}};
  r = llama3().post(both);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(ojson::parse(r->body)["error"]["param"], "tool_choice");
}

TEST(ToolChoice, NoneOffersNoToolsAndParsesNoCalls) {
  ojson body = request("none", 3);
  body["max_tokens"] = 8;
  auto none = llama3().post(body);
  body["tool_choice"] = "auto";
  auto with = llama3().post(body);
  ASSERT_TRUE(none && with);
  ASSERT_EQ(none->status, 200) << none->body;
  const ojson n = ojson::parse(none->body), w = ojson::parse(with->body);
  // The tools are not in the prompt: it is shorter than with them offered.
  EXPECT_LT(n["usage"]["prompt_tokens"].get<int>(), w["usage"]["prompt_tokens"].get<int>());
  EXPECT_FALSE(n["choices"][0]["message"].contains("tool_calls"));
  EXPECT_NE(n["choices"][0]["finish_reason"], "tool_calls");
}

// A template teaching Hermes' <tool_call> format: the enforced calls come in that format.
TEST(ToolChoice, HermesTemplateGetsHermesCalls) {
  TempDir dir;
  const std::string src = fixture("models/tiny-llama3");
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"})
    std::filesystem::create_symlink(src + "/" + f, dir / f);
  ojson cfg = ojson::parse(read_file(src + "/tokenizer_config.json"));
  cfg["chat_template"] = read_file(std::string(CAMELID_SOURCE_DIR) + "/tests/data/chat_templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja");
  spit(dir / "tokenizer_config.json", cfg.dump());
  Server hermes(dir.str());
  for (int seed : {1, 2}) {
    ojson body = request({{"type", "function"}, {"function", {{"name", "get_time"}}}}, seed, false);
    body["logprobs"] = true;  // the tokens show the format the model wrote
    const ojson resp = expect_calls(hermes, body, "get_time", 1);
    std::string text;
    for (const ojson& t : resp["choices"][0]["logprobs"]["content"]) text += t["token"].get<std::string>();
    EXPECT_EQ(text.rfind("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {", 0), 0u) << text;
  }
}
