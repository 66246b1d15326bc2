// `camelid infill`: code between a prefix and a suffix, with the model's fill-in-the-middle tokens.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "chat/infill_prompt.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "runtime/session.h"

namespace camelid::cli {
namespace {

struct InfillArgs {
  std::string model, prefix, suffix, prefix_file, suffix_file, tokenizer;
  int n = 256, threads = 0, ctx = 0;
  SamplingParams sp;
  bool json = false;
};

void run(InfillArgs& a, const CLI::App& sub) {
  set_threads(a.threads);
  if (a.n < 1) fail("-n must be >= 1, got ", a.n);
  a.sp.validate();
  if (!a.prefix_file.empty()) a.prefix = read_text_file(a.prefix_file, 64 << 20);
  if (!a.suffix_file.empty()) a.suffix = read_text_file(a.suffix_file, 64 << 20);
  auto tok = load_tokenizer_for(a.model, a.tokenizer);
  const FimTokens fim = find_fim_tokens(*tok);
  const std::vector<int> prompt = infill_prompt(*tok, a.prefix, a.suffix, a.model);  // names the model without FIM tokens
  auto model = load_llama(a.model);
  const int V = model->config().vocab_size;
  if (tok->vocab_size() > V) fail("the tokenizer has ", tok->vocab_size(), " tokens but the model only ", V);
  const long long need = (long long)prompt.size() + a.n;
  const int ctx = a.ctx > 0 ? a.ctx : int(std::min<long long>(need, model->config().max_seq_len));
  if (int(prompt.size()) >= ctx) fail("the infill prompt (", prompt.size(), " tokens) does not fit the ", ctx, "-token context");
  resolve_sampling(sub, a.model, a.sp, a.json);

  // The middle ends at the FIM end token, or at any of the model's end tokens.
  std::vector<int> stop = model->config().eos_ids;
  for (int id : tok->eos_ids()) stop.push_back(id);
  if (fim.eot >= 0) stop.push_back(fim.eot);

  using Clock = std::chrono::steady_clock;
  Session s(*model, ctx);
  Sampler sampler(a.sp);
  EvalStats st;
  auto t0 = Clock::now();
  std::vector<float> logits = s.feed(prompt);
  st.prompt_tokens = (long long)prompt.size();
  st.prompt_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  t0 = Clock::now();
  std::vector<int> history = prompt, out;
  std::string finish = "length";
  StreamDecoder dec(*tok);
  for (int i = 0; i < a.n; ++i) {
    const int id = sampler.sample(logits.data(), V, history);
    if (std::find(stop.begin(), stop.end(), id) != stop.end()) {
      finish = "stop";
      break;
    }
    out.push_back(id), history.push_back(id);
    if (!a.json) std::fputs(dec.push(id).c_str(), stdout), std::fflush(stdout);
    if (i + 1 == a.n || s.pos() >= s.ctx()) break;
    logits = s.feed({id});
    ++st.gen_tokens;
  }
  st.gen_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (a.json) {
    const nlohmann::json j = {{"prompt_ids", prompt}, {"ids", out}, {"text", tok->decode(out, true, true)},
                              {"finish_reason", finish}, {"seed", a.sp.seed}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("%s\n", dec.flush().c_str());
  std::fflush(stdout);
  st.print();
}

const bool reg_infill = add_command([](CLI::App& app) {
  auto a = std::make_shared<InfillArgs>();
  auto* sub = app.add_subcommand("infill", "Fill in the code between a prefix and a suffix (Code Llama and other FIM models)");
  sub->add_option("-m,--model", a->model, "model directory or file")->required();
  auto* pre = sub->add_option("--prefix", a->prefix, "the code before the gap");
  auto* suf = sub->add_option("--suffix", a->suffix, "the code after the gap");
  sub->add_option("--prefix-file", a->prefix_file, "the code before the gap, from a file")->excludes(pre);
  sub->add_option("--suffix-file", a->suffix_file, "the code after the gap, from a file")->excludes(suf);
  add_tokenizer_option(sub, a->tokenizer);
  sub->add_option("-n,--n-predict", a->n, "longest middle, in tokens");
  add_sampling_options(sub, a->sp);
  add_ctx_option(sub, a->ctx, "context size (0: prompt + n, at most the model's)");
  add_threads_option(sub, a->threads);
  add_run_flags(sub);
  sub->add_flag("--json", a->json, "print {\"prompt_ids\":[...],\"ids\":[...],\"text\":...,\"finish_reason\":...}");
  sub->callback([a, sub] { run(*a, *sub); });
});

}  // namespace
}  // namespace camelid::cli
