// `camelid chat`: interactive multi-turn chat in the terminal (or from piped stdin), streamed.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "chat/chat_prompt.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "runtime/session.h"

namespace camelid::cli {
namespace {

struct ChatArgs {
  std::string model, system;
  int threads = 0, ctx = 4096, max_tokens = 1024;
  SamplingParams sp;
};

void run(ChatArgs& a) {
  set_threads(a.threads);
  a.sp.validate();
  auto model = load_llama(a.model);
  auto tok = load_tokenizer_for(a.model, "");
  ChatTemplate tmpl = load_chat_template_for(a.model, tok.get());
  Session session(*model, a.ctx);
  const std::vector<int> stop_ids = end_of_turn_ids(*tok, model->config().eos_ids);

  const bool tty = isatty(0);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  std::vector<int> fed;  // tokens in the KV cache, in order
  Sampler sampler(a.sp);
  if (tty) std::fprintf(stderr, "camelid chat: /reset clears the conversation, /quit (or Ctrl-D) leaves.\n");
  std::string line;
  while (true) {
    if (tty) std::fprintf(stderr, "> "), std::fflush(stderr);
    if (!std::getline(std::cin, line)) break;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      messages = nlohmann::ordered_json::array();
      if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
      fed.clear();
      session.reset();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    ChatTemplateInputs in;
    in.messages = messages;
    in.add_generation_prompt = true;
    std::vector<int> prompt;
    try {
      prompt = encode_chat(*tok, tmpl, in);  // user text never becomes special tokens
    } catch (const Error& e) {
      messages.erase(messages.end() - 1);
      std::fprintf(stderr, "error: %s\n", e.what());
      continue;
    }
    if (int(prompt.size()) + 1 >= session.ctx()) {
      messages.erase(messages.end() - 1);
      std::fprintf(stderr, "error: the conversation (%zu tokens) no longer fits the %d-token context; /reset\n",
                   prompt.size(), session.ctx());
      continue;
    }
    // Reuse the cache for the common prefix with what was already fed.
    size_t common = 0;
    while (common < fed.size() && common < prompt.size() && fed[common] == prompt[common]) ++common;
    if (common == prompt.size()) --common;  // at least one token to get logits from
    session.rewind(int(common));
    fed.resize(common);
    std::vector<int> todo(prompt.begin() + common, prompt.end());
    std::vector<float> logits = session.feed(todo);
    fed.insert(fed.end(), todo.begin(), todo.end());

    StreamDecoder dec(*tok);
    std::string reply;
    std::vector<int> history = prompt;
    for (int i = 0; i < a.max_tokens && session.pos() < session.ctx(); ++i) {
      const int id = sampler.sample(logits.data(), model->config().vocab_size, history);
      if (std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end()) break;
      history.push_back(id);
      const std::string piece = dec.push(id);
      reply += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
      if (session.pos() >= session.ctx()) break;
      logits = session.feed({id});
      fed.push_back(id);
    }
    const std::string rest = dec.flush();
    reply += rest;
    std::printf("%s\n", rest.c_str());
    std::fflush(stdout);
    messages.push_back({{"role", "assistant"}, {"content", reply}});
    std::fprintf(stderr, "[context: %d / %d tokens]\n", session.pos(), session.ctx());
  }
}

const bool reg = add_command([](CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* sub = app.add_subcommand("chat", "Interactive chat with streamed replies");
  sub->add_option("-m,--model", a->model, "model directory")->required();
  sub->add_option("--system", a->system, "system prompt");
  sub->add_option("--ctx", a->ctx, "context size");
  sub->add_option("-n,--max-tokens", a->max_tokens, "longest reply");
  add_sampling_options(sub, a->sp);
  sub->add_option("--threads", a->threads, "threads (0 = all cores)");
  add_run_flags(sub);
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
