// `camelid template`: render a model's chat template for a conversation, without the model.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mmap_file.h"

namespace camelid::cli {
namespace {

struct TemplateArgs {
  std::string model, messages, tools, date;
  int64_t now = -1;
  bool no_generation_prompt = false, json = false;
};

std::string render(const TemplateArgs& a) {
  using ojson = nlohmann::ordered_json;
  ChatTemplateInputs in;
  try {
    const ojson m = ojson::parse(read_text_file(a.messages));
    // Either a list of messages or {"messages": [...], "tools": [...]} as an API request has it.
    in.messages = m.is_object() && m.contains("messages") ? m["messages"] : m;
    if (m.is_object() && m.contains("tools")) in.tools = m["tools"];
    if (!a.tools.empty()) in.tools = ojson::parse(read_text_file(a.tools));
  } catch (const ojson::exception& e) {
    fail(a.messages, ": invalid JSON: ", e.what());
  }
  if (!in.messages.is_array()) fail(a.messages, ": expected a JSON array of messages");
  in.add_generation_prompt = !a.no_generation_prompt;
  if (!a.date.empty()) in.extra["date_string"] = a.date;
  if (a.now >= 0) in.now = a.now;
  // chat and serve fall back to the family's format; asked for the model's own template, none is an
  // error naming the path.
  const ChatTemplate t = load_chat_template_for(a.model, nullptr, /*require_template=*/true);
  return t.render(in);
}

void run_template(const TemplateArgs& a) {
  if (!a.json) {
    std::printf("%s", render(a).c_str());
    return;
  }
  // --json: every failure (messages, model, template syntax, raise_exception, limits) is
  // {"error": ...} on stdout and exit status 1.
  nlohmann::ordered_json out;
  try {
    out["rendered"] = render(a);
  } catch (const std::exception& e) {
    out["error"] = e.what();
  }
  std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  std::fflush(stdout);
  if (out.contains("error")) std::exit(1);
}

const bool reg_template = add_command([](CLI::App& app) {
  auto a = std::make_shared<TemplateArgs>();
  auto* sub = app.add_subcommand("template", "Render a model's chat template for a conversation");
  sub->add_option("-m,--model", a->model, "model directory, or a model file in it (the template comes from its tokenizer_config.json)")->required();
  sub->add_option("--messages", a->messages, "JSON file: [{\"role\":..., \"content\":...}, ...]")->required();
  sub->add_option("--tools", a->tools, "JSON file with a list of tool schemas");
  sub->add_option("--date", a->date, "date_string for templates that print today's date");
  sub->add_option("--now", a->now, "strftime_now()'s clock: Unix seconds, read as UTC (default: the local clock)");
  sub->add_flag("--no-generation-prompt", a->no_generation_prompt, "do not open the assistant's turn");
  sub->add_flag("--json", a->json, "print {\"rendered\": ...}, or {\"error\": ...} and exit 1");
  sub->callback([a] { run_template(*a); });
});

}  // namespace
}  // namespace camelid::cli
