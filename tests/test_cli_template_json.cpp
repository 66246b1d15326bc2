// `camelid template --json`: the rendered prompt, or {"error": ...} with exit status 1 for every
// failure (messages, model without a template, bad template, raise_exception, sandbox limits).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "fixtures.h"
#include "cli_runner.h"

namespace camelid::test {
namespace {

using json = nlohmann::json;

// A model directory holding only a tokenizer_config.json with this chat template (removed at exit).
std::string model_with_template(const std::string& name, const std::string& tmpl) {
  struct Cleanup {
    std::vector<std::filesystem::path> dirs;
    ~Cleanup() {
      for (auto& d : dirs) std::filesystem::remove_all(d);
    }
  };
  static Cleanup cleanup;
  const auto dir = std::filesystem::path(camelid::test::scratch_dir()) / name;
  cleanup.dirs.push_back(dir);
  std::filesystem::create_directories(dir);
  json cfg = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  if (!tmpl.empty()) cfg["chat_template"] = tmpl;
  std::ofstream(dir / "tokenizer_config.json") << cfg.dump();
  return dir.string();
}

// Runs template --json; the status and the parsed output (which must be one JSON object).
std::pair<int, json> run_json(const std::string& model, const std::string& messages_file, const std::string& more = "") {
  const CmdResult r = run_camelid("template -m " + q(model) + " --messages " + q(messages_file) + " --json " + more);
  json out;
  try {
    out = json::parse(r.out);
  } catch (const json::exception&) {
    ADD_FAILURE() << "not JSON: " << r.out;
  }
  return {r.status, out};
}

void expect_error(const std::pair<int, json>& got, const std::string& want) {
  EXPECT_EQ(got.first, 1) << got.second.dump();
  ASSERT_TRUE(got.second.is_object() && got.second.contains("error")) << got.second.dump();
  EXPECT_FALSE(got.second.contains("rendered"));
  EXPECT_NE(got.second["error"].get<std::string>().find(want), std::string::npos) << got.second.dump();
}

TEST(CliTemplateJson, EveryFailureIsAnErrorObject) {
  const std::string msgs = write_temp("tj-msgs.json", R"([{"role": "user", "content": "Hi"}])");
  const std::string good = model_with_template("tj-good", "{{- \"}}\" }}{% for m in messages %}{{ m.content }}{% endfor %}{{ strftime_now('%Y-%m-%d') }}");
  auto ok = run_json(good, msgs, "--now 1722000000");
  EXPECT_EQ(ok.first, 0);
  EXPECT_EQ(ok.second, json({{"rendered", "}}Hi2024-07-26"}}));

  expect_error(run_json(model_with_template("tj-raise", "{{ raise_exception('no ' ~ messages[0].role) }}"), msgs), "no user");
  expect_error(run_json(model_with_template("tj-syntax", "{% if %}"), msgs), "chat_template: template syntax error");
  expect_error(run_json(model_with_template("tj-runtime", "{{ 1 / 0 }}"), msgs), "division by zero");
  expect_error(run_json(model_with_template("tj-limit", "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"), msgs), "step");
  expect_error(run_json(model_with_template("tj-none", ""), msgs), "no chat template");
  expect_error(run_json("/nonexistent/model", msgs), "/nonexistent/model");
  expect_error(run_json(good, write_temp("tj-bad.json", "[{")), "invalid JSON");
  expect_error(run_json(good, write_temp("tj-obj.json", R"({"role": "user"})")), "expected a JSON array of messages");
  expect_error(run_json(good, "/nonexistent/messages.json"), "/nonexistent/messages.json");
}

TEST(CliTemplateJson, WithoutJsonErrorsGoToStderr) {
  const std::string msgs = write_temp("tj-msgs2.json", R"([{"role": "user", "content": "Hi"}])");
  const CmdResult r = run_camelid("template -m " + q(model_with_template("tj-raise2", "{{ raise_exception('stop') }}")) + " --messages " + q(msgs), true);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "error: stop\n");
}

}  // namespace
}  // namespace camelid::test
