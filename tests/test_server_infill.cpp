// POST /infill (llama-server's code-completion endpoint): the model's FIM prompt, llama-server's
// response shape whole and streamed, input_extra and prompt, a 400 for a model without FIM tokens.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "infill_model.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

struct FimServer {
  TempDir dir;
  std::string model = code_llama_like(dir);
  ServerProcess proc{"-m '" + model + "' --parallel 1 --ctx 128 --threads 2"};
};

FimServer& fim_server() {
  static FimServer s;
  return s;
}

httplib::Result post(int port, const json& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  return c.Post("/infill", body.dump(), "application/json");
}

json infill(const json& body) {
  auto r = post(fim_server().proc.port(), body);
  if (!r) return {{"transport", "failed"}};
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body);
}

const json kBase = {{"input_prefix", "def f(x):"}, {"input_suffix", "  return y"}, {"n_predict", 6}, {"temperature", 0}};

}  // namespace

TEST(ServerInfill, SameMiddleAsTheInfillCommand) {
  const json j = infill(kBase);
  ASSERT_TRUE(j.contains("content")) << j.dump();
  EXPECT_EQ(j["stop"], true);
  EXPECT_LE(j["tokens_predicted"].get<int>(), 6);
  EXPECT_TRUE(j["stop_type"] == "limit" || j["stop_type"] == "eos") << j.dump();
  EXPECT_EQ(j["stopped_limit"], j["stop_type"] == "limit");
  EXPECT_TRUE(j["timings"].is_object());
  // `camelid infill` builds the same prompt and, greedy, writes the same middle.
  auto cli = run_camelid("infill -m " + q(fim_server().model) + " --prefix 'def f(x):' --suffix '  return y' -n 6 --temp 0 --json");
  ASSERT_EQ(cli.status, 0) << cli.out;
  const json c = json::parse(cli.out);
  EXPECT_EQ(j["tokens_evaluated"], c["prompt_ids"].size());
  EXPECT_EQ(j["content"], c["text"]) << cli.out;
}

TEST(ServerInfill, StreamedEventsAddUpToTheWholeResponse) {
  const json whole = infill(kBase);
  json body = kBase;
  body["stream"] = true;
  auto r = post(fim_server().proc.port(), body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  EXPECT_EQ(r->body.find("[DONE]"), std::string::npos);  // llama-server's shape: the last event says stop
  std::string content;
  json last;
  size_t at = 0, events = 0;
  while ((at = r->body.find("data: ", at)) != std::string::npos) {
    const size_t end = r->body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos) << r->body;
    last = json::parse(r->body.substr(at + 6, end - at - 6));
    content += last["content"].get<std::string>();
    ++events;
    at = end;
  }
  EXPECT_GE(events, 2u);
  EXPECT_EQ(last["stop"], true) << r->body;
  EXPECT_EQ(last["content"], "");
  EXPECT_EQ(content, whole["content"]);
  EXPECT_EQ(last["tokens_predicted"], whole["tokens_predicted"]);
}

TEST(ServerInfill, PromptGoesAfterThePrefixAndExtraFilesBeforeIt) {
  json split = kBase;
  split["input_prefix"] = "def f(";
  split["prompt"] = "x):";
  const json a = infill(split), b = infill(kBase);
  EXPECT_EQ(a["tokens_evaluated"], b["tokens_evaluated"]);
  EXPECT_EQ(a["content"], b["content"]);
  json extra = kBase;
  extra["input_extra"] = {{{"filename", "util.py"}, {"text", "def g(): pass\n"}}, {{"text", "y = 2\n"}}};
  const json e = infill(extra);
  EXPECT_GT(e["tokens_evaluated"].get<int>(), b["tokens_evaluated"].get<int>() + 6);
}

TEST(ServerInfill, BadFieldsAre400NamingThem) {
  auto bad = [](const json& extra, const std::string& param) {
    json body = kBase;
    body.update(extra);
    auto r = post(fim_server().proc.port(), body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["param"], param) << r->body;
  };
  bad({{"input_prefix", 3}}, "input_prefix");
  bad({{"input_extra", "x"}}, "input_extra");
  bad({{"input_extra", {{{"filename", "a"}}}}}, "input_extra[0].text");
  bad({{"n_predict", -2}}, "n_predict");
  bad({{"temperature", "hot"}}, "temperature");
  // A prompt longer than the context.
  std::string long_prefix;
  for (int i = 0; i < 200; ++i) long_prefix += "word" + std::to_string(i) + " ";
  bad({{"input_prefix", long_prefix}}, "prompt");
}

TEST(ServerInfill, ModelWithoutFimTokensIs400) {
  ServerProcess plain("-m '" + fixture("models/tiny-llama2") + "' --parallel 1 --ctx 128 --threads 2");
  auto r = post(plain.port(), kBase);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  const std::string msg = json::parse(r->body)["error"]["message"];
  EXPECT_NE(msg.find("no fill-in-the-middle tokens"), std::string::npos) << msg;
}
