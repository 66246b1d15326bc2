// `camelid chat`: interactive multi-turn chat in the terminal (or from piped stdin), streamed.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "chat/chat_prompt.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/interrupt.h"
#include "cli/line_reader.h"
#include "cli/speculative_args.h"
#include "cli/term_style.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "runtime/session.h"
#include "runtime/speculative.h"

namespace camelid::cli {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct ChatArgs {
  std::string model, system, system_file;
  int threads = 0, ctx = 4096, max_tokens = 1024;
  SamplingParams sp;
  bool ignore_eos = false;
  SpeculativeArgs spec;
};

const char* kHelp =
    "  /help          this list\n"
    "  /clear         start a new conversation (the system prompt stays); also /reset\n"
    "  /exit          leave; also /quit or Ctrl-D\n"
    "  a line ending in \\ continues on the next line; \"\"\" opens and closes a block of lines\n"
    "  Ctrl-C stops a reply; at the prompt, Ctrl-C twice leaves\n";

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

class Chat {
 public:
  Chat(ChatArgs& a, Llama& model, const Tokenizer& tok, const ChatTemplate& tmpl, Llama* draft = nullptr)
      : a_(a), model_(model), tok_(tok), tmpl_(tmpl), draft_(draft), session_(model, a.ctx), sampler_(a.sp),
        stop_ids_(end_of_turn_ids(tok, model.config().eos_ids)) {
    err_.on = use_colour(2);
    clear();
  }

  void clear() {
    messages_ = ojson::array();
    if (!a_.system.empty()) messages_.push_back({{"role", "system"}, {"content", a_.system}});
    fed_.clear();
    session_.reset();
  }

  // One user message -> one streamed reply.
  void turn(const std::string& text) {
    messages_.push_back({{"role", "user"}, {"content", text}});
    std::vector<int> prompt;
    if (!fit(prompt)) return;
    // Reuse the cache for the common prefix with what was already fed.
    size_t common = 0;
    while (common < fed_.size() && common < prompt.size() && fed_[common] == prompt[common]) ++common;
    if (common == prompt.size()) --common;  // at least one token to get logits from
    session_.rewind(int(common));
    fed_.resize(common);
    if (a_.spec.enabled()) return speculative_turn(prompt);
    const std::vector<int> todo(prompt.begin() + common, prompt.end());
    auto t0 = Clock::now();
    std::vector<float> logits = session_.feed(todo);
    stats_.prompt_ms += ms_since(t0);
    stats_.prompt_tokens += (long long)todo.size();
    fed_.insert(fed_.end(), todo.begin(), todo.end());

    StreamDecoder dec(tok_);
    std::string reply;
    std::vector<int> history = prompt;
    bool interrupted = interrupt::pending(), cut = false;
    t0 = Clock::now();
    for (int i = 0; i < a_.max_tokens && !interrupted; ++i) {
      const int id = sampler_.sample(logits.data(), model_.config().vocab_size, history);
      if (!a_.ignore_eos && std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end()) break;
      history.push_back(id);
      const std::string piece = dec.push(id);
      reply += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
      if (interrupt::pending()) interrupted = true;
      if (interrupted || i + 1 == a_.max_tokens) break;
      if (session_.pos() >= session_.ctx()) {
        cut = true;
        break;
      }
      logits = session_.feed({id});
      fed_.push_back(id);
      ++stats_.gen_tokens;
    }
    stats_.gen_ms += ms_since(t0);
    end_reply(dec, reply, interrupted, cut);
  }

  const EvalStats& stats() const { return stats_; }

 private:
  // The reply's end: the decoder's rest, the reply kept in the conversation, the notes.
  void end_reply(StreamDecoder& dec, std::string& reply, bool interrupted, bool cut) {
    interrupt::clear();  // before anything is printed: a Ctrl-C after the reply's end is one at the prompt
    const std::string rest = dec.flush();
    reply += rest;
    std::printf("%s\n", rest.c_str());
    std::fflush(stdout);
    // A stopped reply stays in the conversation as far as it got, as the user saw it.
    messages_.push_back({{"role", "assistant"}, {"content", reply}});
    if (interrupted) std::fprintf(stderr, "%s[reply stopped]%s\n", err_.warn(), err_.reset());
    if (cut) std::fprintf(stderr, "%s[the context is full: reply cut short]%s\n", err_.warn(), err_.reset());
    std::fprintf(stderr, "%s[context: %d / %d tokens]%s\n", err_.dim(), session_.pos(), session_.ctx(), err_.reset());
  }

  // --draft / --lookup: the reply by generate_speculative (greedy: the same tokens as the plain
  // loop). The cache already holds fed_ (the common prefix with the last turns).
  void speculative_turn(const std::vector<int>& prompt) {
    const size_t common = fed_.size();
    // The prompt but its last token fed here, so that prompt eval is timed apart.
    if (prompt.size() - common > 1) {
      const std::vector<int> todo(prompt.begin() + long(common), prompt.end() - 1);
      const auto t0 = Clock::now();
      session_.feed(todo);
      stats_.prompt_ms += ms_since(t0);
      stats_.prompt_tokens += (long long)todo.size();
    }
    SpeculativeOptions so;
    so.max_draft = a_.spec.draft_max;
    so.draft_model = draft_;
    so.prompt_cached = session_.pos();
    GenerateOptions opt;
    opt.max_new_tokens = a_.max_tokens;
    opt.sampling = a_.sp;
    opt.sampling.seed = a_.sp.seed + uint64_t(turns_++);  // each turn its own draws
    opt.stop_at_eos = false;  // the end-of-turn tokens, below
    StreamDecoder dec(tok_);
    std::string reply;
    bool interrupted = interrupt::pending(), stopped = false;
    SpeculativeStats st;
    const auto t0 = Clock::now();
    GenerateResult g;
    if (!interrupted)
      g = generate_speculative(session_, prompt, opt, so, &st, [&](int id) {
        if (!a_.ignore_eos && std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end()) return stopped = true, false;
        const std::string piece = dec.push(id);
        reply += piece;
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
        if (interrupt::pending()) return interrupted = true, false;
        return true;
      });
    stats_.gen_ms += ms_since(t0);
    stats_.gen_tokens += (long long)g.ids.size() - (stopped ? 1 : 0);
    // The cache holds a prefix of prompt + the reply's tokens.
    fed_ = prompt;
    fed_.insert(fed_.end(), g.ids.begin(), g.ids.end());
    fed_.resize(std::min(fed_.size(), size_t(session_.pos())));
    const bool cut = !stopped && !interrupted && int(g.ids.size()) < a_.max_tokens;
    end_reply(dec, reply, interrupted, cut);
    std::fprintf(stderr, "%s[speculative (%s): %ld drafted, %ld accepted]%s\n", err_.dim(),
                 draft_ ? "draft model" : "prompt lookup", st.drafted, st.accepted, err_.reset());
  }

  // Renders the conversation; when it leaves too little room for a reply, drops the oldest
  // turns (the system prompt stays) and says so. False (message dropped) when even the last
  // message alone does not fit.
  bool fit(std::vector<int>& prompt) {
    const int ctx = session_.ctx();
    const int room = std::max(1, std::min(a_.max_tokens, ctx / 4));
    const size_t first = (!messages_.empty() && messages_[0]["role"] == "system") ? 1 : 0;
    int dropped = 0;
    while (true) {
      ChatTemplateInputs in;
      in.messages = messages_;
      in.add_generation_prompt = true;
      try {
        prompt = encode_chat(tok_, tmpl_, in);  // user text never becomes special tokens
      } catch (const Error& e) {
        messages_.erase(messages_.end() - 1);
        std::fprintf(stderr, "error: %s\n", e.what());
        return false;
      }
      if (int(prompt.size()) + room <= ctx) break;
      if (messages_.size() <= first + 1) {
        messages_.erase(messages_.end() - 1);
        std::fprintf(stderr, "error: the message (%zu tokens with the system prompt) leaves no room for a reply in the %d-token context (--ctx)\n",
                     prompt.size(), ctx);
        return false;
      }
      // Drop the oldest turn: its user message and everything up to the next user message.
      size_t end = first + 1;
      while (end + 1 < messages_.size() && messages_[end]["role"] != "user") ++end;
      dropped += int(end - first);
      messages_.erase(messages_.begin() + first, messages_.begin() + end);
    }
    if (dropped > 0)
      std::fprintf(stderr, "%s[the conversation no longer fits the %d-token context: dropped its %d oldest messages]%s\n",
                   err_.warn(), ctx, dropped, err_.reset());
    return true;
  }

  ChatArgs& a_;
  Llama& model_;
  const Tokenizer& tok_;
  const ChatTemplate& tmpl_;
  Llama* draft_;
  int turns_ = 0;
  Session session_;
  Sampler sampler_;
  std::vector<int> stop_ids_;
  ojson messages_;
  std::vector<int> fed_;  // tokens in the KV cache, in order
  EvalStats stats_;
  TermStyle err_;
};

void run(ChatArgs& a, const CLI::App& sub) {
  set_threads(a.threads);
  if (a.max_tokens < 1) fail("-n/--max-tokens must be >= 1, got ", a.max_tokens);
  if (a.ctx < 2) fail("-c/--ctx must be >= 2, got ", a.ctx);
  a.sp.validate();
  if (!a.system_file.empty()) a.system = read_text_file(a.system_file, 16 << 20);
  a.model = model_or_default(a.model);
  auto model = load_llama(a.model);
  auto tok = load_tokenizer_for(a.model, "");
  ChatTemplate tmpl = load_chat_template_for(a.model, tok.get());
  auto draft = load_draft(a.spec, *model, false, false);
  resolve_sampling(sub, a.model, a.sp);
  Chat chat(a, *model, *tok, tmpl, draft.get());

  const bool tty = isatty(0);
  TermStyle err{use_colour(2)};
  LineReader reader(tty, use_colour(1));
  interrupt::install();
  if (tty) std::fprintf(stderr, "%scamelid chat: /help lists the commands; /exit or Ctrl-D leaves.%s\n", err.dim(), err.reset());
  int interrupts = 0;  // Ctrl-C in a row at the prompt
  std::string text;
  while (true) {
    const LineReader::Status st = reader.read_message(text);
    if (st == LineReader::Status::Eof) break;
    if (st == LineReader::Status::Interrupted) {
      if (++interrupts >= 2) break;
      std::fprintf(stderr, "%s(Ctrl-C again, Ctrl-D or /exit to leave)%s\n", err.dim(), err.reset());
      continue;
    }
    interrupts = 0;
    if (text == "/quit" || text == "/exit") break;
    if (text == "/help") {
      std::fputs(kHelp, stderr);
      continue;
    }
    if (text == "/reset" || text == "/clear") {
      chat.clear();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (text.empty()) continue;
    chat.turn(text);
  }
  chat.stats().print();
}

const bool reg_chat = add_command([](CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* sub = app.add_subcommand("chat", "Interactive chat with streamed replies");
  sub->add_option("-m,--model", a->model, "model directory or file (default: the small English model that ships with camelid, models/camelid-brown, or $CAMELID_MODEL)");
  auto* sys = sub->add_option("--system", a->system, "system prompt");
  sub->add_option("--system-file", a->system_file, "system prompt from a file")->excludes(sys);
  add_ctx_option(sub, a->ctx);
  sub->add_option("-n,--max-tokens", a->max_tokens, "longest reply");
  add_sampling_options(sub, a->sp);
  sub->add_option("--repeat-last-n", a->sp.repeat_last_n, "tokens the penalty looks back on");
  sub->add_flag("--ignore-eos", a->ignore_eos, "keep generating after an end-of-turn token (until -n or Ctrl-C)");
  add_threads_option(sub, a->threads);
  add_speculative_options(sub, a->spec);
  add_run_flags(sub);
  sub->callback([a, sub] { run(*a, *sub); });
});

}  // namespace
}  // namespace camelid::cli
