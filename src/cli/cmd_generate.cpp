// `camelid generate`: prompt (text, or token ids) -> new tokens, streamed as text when a tokenizer is present.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/speculative_args.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "runtime/session.h"
#include "server/structured_output.h"
#include "tokenizer/tokenizer.h"
#include "train/reward.h"

namespace camelid::cli {
namespace {

struct GenArgs {
  std::string model, ids, prompt, prompt_file, tokenizer;
  int n = 128, threads = 0, ctx = 0;
  SamplingParams sp;
  bool no_mmap = false;
  bool json = false, ignore_eos = false;
  std::string grammar_file, json_schema;  // structured output
  SpeculativeArgs spec;
  int best_of = 0;     // > 0: sample this many completions and keep the one the reward model scores best
  std::string reward;  // the reward model (LlamaForSequenceClassification) for --best-of
};

// --best-of N --reward RM: N completions from seeds seed, seed+1, ..., each scored by the reward
// model on prompt + completion (its final hidden state at the last token); the best is printed
// (the first of equal scores), or with --json all of them with their scores.
void run_best_of(const GenArgs& a, Llama& model, Llama* draft, const Tokenizer* tok, const std::vector<int>& prompt,
                 GenerateOptions opt, int ctx) {
  auto rm = load_model(a.reward);
  if (rm->config.num_labels != 1)
    fail("--reward ", a.reward, ": not a reward model (expected a LlamaForSequenceClassification with one label, "
         "as camelid train-reward writes)");
  struct Sample {
    uint64_t seed;
    GenerateResult r;
    double score = 0;
  };
  std::vector<Sample> samples;
  std::vector<std::vector<int>> seqs;
  for (int i = 0; i < a.best_of; ++i) {
    Sample s{a.sp.seed + uint64_t(i), {}, 0};
    opt.sampling.seed = s.seed;
    Session session(model, ctx);
    s.r = generate_with(a.spec, draft, session, prompt, opt, [](int) { return true; }, nullptr);
    std::vector<int> seq = prompt;
    seq.insert(seq.end(), s.r.ids.begin(), s.r.ids.end());
    for (int id : seq)
      if (id >= rm->config.vocab_size)
        fail("--reward ", a.reward, ": token id ", id, " is outside the reward model's vocabulary (",
             rm->config.vocab_size, "): it needs the generating model's tokenizer");
    if (int(seq.size()) > rm->config.max_seq_len)
      fail("--reward ", a.reward, ": ", seq.size(), " tokens exceed the reward model's context ", rm->config.max_seq_len);
    seqs.push_back(std::move(seq));
    samples.push_back(std::move(s));
  }
  LlamaTrain scorer(rm->config);
  const std::vector<double> scores = train::reward_scores(scorer, *rm, seqs);
  size_t best = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i].score = scores[i];
    if (scores[i] > scores[best]) best = i;
  }
  auto text_of = [&](const GenerateResult& r) { return tok ? tok->decode(r.ids, true, true) : std::string(); };
  if (a.json) {
    nlohmann::json all = nlohmann::json::array();
    for (const Sample& s : samples) {
      nlohmann::json c = {{"seed", s.seed}, {"ids", s.r.ids}, {"score", s.score}, {"finish_reason", s.r.finish_reason}};
      if (tok) c["text"] = text_of(s.r);
      all.push_back(c);
    }
    nlohmann::json j = {{"ids", samples[best].r.ids}, {"prompt_tokens", prompt.size()},
                        {"finish_reason", samples[best].r.finish_reason}, {"seed", samples[best].seed},
                        {"score", samples[best].score}, {"best_of", a.best_of}, {"chosen", best}, {"completions", all}};
    if (tok) j["text"] = text_of(samples[best].r);
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (tok) {
      std::printf("%s%s\n", a.prompt.c_str(), text_of(samples[best].r).c_str());
    } else {
      for (int id : samples[best].r.ids) std::printf("%d ", id);
      std::printf("\n");
    }
    std::fflush(stdout);
    std::fprintf(stderr, "[best of %d: completion %zu (seed %llu), reward %.6g; rewards:", a.best_of, best,
                 (unsigned long long)samples[best].seed, samples[best].score);
    for (const Sample& s : samples) std::fprintf(stderr, " %.6g", s.score);
    std::fprintf(stderr, "]\n");
  }
}

// --grammar-file F (GBNF) or --json-schema F|JSON: the constraint every sampled token obeys.
std::shared_ptr<TokenConstraint> output_constraint(const GenArgs& a, const Tokenizer& tok, const std::vector<int>& ends) {
  std::shared_ptr<const grammar::Grammar> g;
  if (!a.grammar_file.empty()) {
    try {
      g = grammar_from_gbnf(read_text_file(a.grammar_file, 1 << 20));
    } catch (const Error& e) {
      fail(a.grammar_file, ": ", e.what());
    }
  } else {
    const size_t first = a.json_schema.find_first_not_of(" \t\r\n");
    const bool inline_json = first != std::string::npos && a.json_schema[first] == '{';
    g = grammar_from_schema_text(inline_json ? a.json_schema : read_text_file(a.json_schema, 1 << 20));
  }
  return std::make_shared<GrammarConstraint>(g, grammar_vocab(tok), ends);
}

void run_generate(GenArgs& a, const CLI::App& sub) {
  set_threads(a.threads);
  if (a.n < 0) fail("-n must be >= 0");
  if (!a.prompt_file.empty()) {
    a.prompt = read_text_file(a.prompt_file, 256 << 20);
    if (a.prompt.empty()) fail(a.prompt_file, ": the prompt file is empty");
  }
  if (a.ids.empty() == a.prompt.empty()) fail("give the prompt as -p TEXT, -f FILE or --ids 1,2,3 (one of them)");
  a.sp.validate();
  if ((a.best_of > 0) != !a.reward.empty()) fail("--best-of N and --reward RM_DIR go together");
  if (a.best_of < 0 || a.best_of > 1024) fail("--best-of: must be in 1..1024, got ", a.best_of);
  a.model = model_or_default(a.model);
  auto model = load_llama(a.model, a.no_mmap);
  // Text needs the tokenizer; its special-token text (e.g. "<|eot_id|>") is parsed, as in a raw
  // prompt the user wrote.
  std::unique_ptr<Tokenizer> tok;
  const bool constrained = !a.grammar_file.empty() || !a.json_schema.empty();
  if (!a.prompt.empty() || !a.tokenizer.empty() || constrained) tok = load_tokenizer_for(a.model, a.tokenizer);
  std::vector<int> prompt = a.prompt.empty() ? parse_ids(a.ids) : tok->encode(a.prompt, true, true);
  if (prompt.empty()) fail("empty prompt");
  if (tok && tok->vocab_size() > model->config().vocab_size)
    fail("the tokenizer has ", tok->vocab_size(), " tokens but the model only ", model->config().vocab_size);
  const long long need = (long long)prompt.size() + a.n;
  if (need > (1 << 30)) fail("prompt (", prompt.size(), " tokens) + -n ", a.n, " is too long");
  const int ctx = a.ctx > 0 ? a.ctx : int(need);
  if (need > ctx)
    fail("prompt (", prompt.size(), " tokens) + -n ", a.n, " exceeds --ctx ", ctx);
  if (int(prompt.size()) > model->config().max_seq_len)
    fail("prompt of ", prompt.size(), " tokens exceeds the model's context ", model->config().max_seq_len);
  for (int id : prompt)  // here rather than in the forward pass: before any note on stderr
    if (id >= model->config().vocab_size)
      fail("token id ", id, " is out of range (vocab size ", model->config().vocab_size, ")");
  // The draft and the grammar/schema first: their errors come before any note on stderr.
  auto draft = load_draft(a.spec, *model, constrained, a.no_mmap);
  GenerateOptions opt;
  if (constrained) opt.constraint = output_constraint(a, *tok, model->config().eos_ids);
  resolve_sampling(sub, a.model, a.sp, a.json);
  opt.max_new_tokens = a.n;
  opt.sampling = a.sp;
  opt.stop_at_eos = !a.ignore_eos;
  if (a.best_of > 0) return run_best_of(a, *model, draft.get(), tok.get(), prompt, opt, ctx);
  Session s(*model, ctx);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  Clock::time_point t_first = t0;  // the first token: the prompt is evaluated by then
  GenerateResult r;
  nlohmann::json spec_json = nlohmann::json::object();
  std::unique_ptr<StreamDecoder> dec;
  // The text continues the prompt printed before it: a SentencePiece word's leading space stays.
  if (tok) dec = std::make_unique<StreamDecoder>(*tok, true, !a.prompt.empty());
  if (tok && !a.json) std::printf("%s", a.prompt.c_str());
  if (a.n > 0) {
    r = generate_with(a.spec, draft.get(), s, prompt, opt, [&](int id) {
      if (t_first == t0) t_first = Clock::now();
      if (a.json) return true;
      if (dec) std::printf("%s", dec->push(id).c_str());
      else std::printf("%d ", id);
      std::fflush(stdout);
      return true;
    }, &spec_json);
  }
  std::string text;
  if (tok) text = a.json ? tok->decode(r.ids, true, true) : dec->flush();
  const auto t_end = Clock::now();
  const double secs = std::chrono::duration<double>(t_end - t0).count();
  // Decode steps: each generated token was fed back, except the last when the length ran out.
  EvalStats st;
  const bool any = !r.ids.empty();
  if (!any) t_first = t_end;
  st.prompt_tokens = a.n > 0 ? (long long)prompt.size() : 0;
  st.prompt_ms = std::chrono::duration<double, std::milli>(t_first - t0).count();
  st.gen_tokens = any ? (long long)r.ids.size() - (r.finish_reason == "length" ? 1 : 0) : 0;
  st.gen_ms = std::chrono::duration<double, std::milli>(t_end - t_first).count();
  if (a.json) {
    nlohmann::json j = {{"ids", r.ids}, {"prompt_tokens", prompt.size()},
                        {"finish_reason", r.finish_reason}, {"seconds", secs}, {"seed", a.sp.seed},
                        {"timings", {{"prompt_tokens", st.prompt_tokens}, {"prompt_ms", st.prompt_ms},
                                     {"eval_tokens", st.gen_tokens}, {"eval_ms", st.gen_ms}}}};
    if (tok) j["text"] = text;
    j.update(spec_json);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "[%zu tokens in %.2f s, finish: %s]\n", r.ids.size(), secs, r.finish_reason.c_str());
    st.print();
  }
}

const bool reg_generate = add_command([](CLI::App& app) {
  auto a = std::make_shared<GenArgs>();
  auto* sub = app.add_subcommand("generate", "Generate a continuation of a prompt");
  sub->add_option("-m,--model", a->model, "model directory or file (default: the small English model that ships with camelid, models/camelid-brown, or $CAMELID_MODEL)");
  auto* ids = sub->add_option("--ids", a->ids, "prompt token ids, comma-separated");
  auto* text = sub->add_option("-p,--prompt", a->prompt, "prompt text (needs the model's tokenizer)");
  auto* file = sub->add_option("-f,--file", a->prompt_file, "prompt text from a file");
  ids->excludes(text), ids->excludes(file), text->excludes(file);
  add_tokenizer_option(sub, a->tokenizer);
  sub->add_option("-n,--n-predict", a->n, "tokens to generate");
  add_sampling_options(sub, a->sp);
  sub->add_option("--repeat-last-n", a->sp.repeat_last_n, "tokens the penalty looks back on");
  add_ctx_option(sub, a->ctx, "context size (0: prompt + n)");
  add_threads_option(sub, a->threads);
  add_run_flags(sub);
  add_no_mmap_flag(sub, a->no_mmap);
  sub->add_flag("--ignore-eos", a->ignore_eos, "keep generating after an end-of-sequence token");
  auto* gf = sub->add_option("--grammar-file", a->grammar_file, "GBNF grammar the output must match");
  sub->add_option("--json-schema", a->json_schema, "JSON Schema (a file, or the JSON itself) the output must match")->excludes(gf);
  add_speculative_options(sub, a->spec);
  sub->add_option("--best-of", a->best_of, "sample N completions (seeds seed..seed+N-1), print the one --reward scores best");
  sub->add_option("--reward", a->reward, "reward model directory (camelid train-reward's output) for --best-of");
  sub->add_flag("--json", a->json, "print {\"ids\":[...],\"text\":...,...}");
  sub->callback([a, sub] { run_generate(*a, *sub); });
});

}  // namespace
}  // namespace camelid::cli
