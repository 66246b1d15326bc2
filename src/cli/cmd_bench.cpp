// `camelid bench`: prefill and decode speed with the achieved GFLOP/s and GB/s.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "kernels/kernels.h"
#include "runtime/engine.h"
#include "runtime/session.h"

namespace camelid::cli {
namespace {

struct BenchArgs {
  std::string model, clients = "1,4,16";
  int prompt = 128, gen = 64, threads = 0, reps = 3;
  bool no_mmap = false, cold = false;
  bool json = false, serve = false;
};

// --cold: the model's weight files leave the page cache, so loading reads them back in 2 MiB folios.
void evict_weights(const std::string& model) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(model)) return evict_from_page_cache(model);
  for (const auto& e : fs::directory_iterator(model)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".safetensors" || ext == ".bin" || ext == ".gguf")) evict_from_page_cache(e.path().string());
  }
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct ServeRun {
  double secs, tok_s, decode_tok_s;
  long generated;
  EngineStats stats;
};

// n concurrent greedy requests of `prompt` tokens each generating `gen`, all submitted at once.
ServeRun serve_once(Llama& model, int n, int prompt, int gen) {
  const int V = model.config().vocab_size;
  Engine engine(model, n, prompt + gen + 1);
  std::mutex mu;
  std::condition_variable cv;
  int left = n;
  long generated = 0;
  const double t0 = now();
  for (int c = 0; c < n; ++c) {
    auto r = std::make_shared<EngineRequest>();
    for (int i = 0; i < prompt; ++i) r->prompt.push_back(1 + (c * 131 + i * 7919) % (V - 1));
    r->max_tokens = gen;
    r->sampling.temperature = 0;
    r->on_finish = [&](const std::string&, int, int got) {
      std::lock_guard<std::mutex> lk(mu);
      generated += got;
      if (--left == 0) cv.notify_all();
    };
    engine.submit(r);
  }
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return left == 0; });
  const double secs = now() - t0;
  // The decode phase alone: tokens from batched decode steps over the time spent in them (the
  // end-to-end figure also holds the prompts' prefill).
  const EngineStats st = engine.stats();
  return {secs, generated / secs, st.decode_seconds > 0 ? st.decode_rows / st.decode_seconds : 0, generated, st};
}

// Weights a token is multiplied by (the embedding is a row lookup, not a matmul).
double matmul_params(const ModelWeights& w) { return double(w.matmul_parameters()); }

// What every report starts with: which model, and which kernels ran it.
nlohmann::json run_info(const BenchArgs& a, const ModelWeights& w) {
  return {{"model", a.model}, {"dtype", dtype_name(w.main_dtype())}, {"isa", kernels::isa_name(kernels::active_isa())},
          {"bf16_dot", kernels::bf16_dot_active()}, {"threads", omp_get_max_threads()}};
}

void print_info(const nlohmann::json& info) {
  std::printf("model %s  dtype %s  isa %s%s  threads %d\n", info["model"].get<std::string>().c_str(),
              info["dtype"].get<std::string>().c_str(), info["isa"].get<std::string>().c_str(),
              info["bf16_dot"].get<bool>() ? " (bf16 dot)" : "", info["threads"].get<int>());
}

// Aggregate generation speed of N concurrent requests through the continuous-batching engine.
void run_serve(const BenchArgs& a) {
  auto model = load_llama(a.model, a.no_mmap);
  const nlohmann::json info = run_info(a, model->weights());
  if (!a.json) print_info(info);
  const double flop_per_token = 2 * matmul_params(model->weights());
  nlohmann::json rows = nlohmann::json::array();
  double single = 0, single_decode = 0;
  for (int n : parse_ids(a.clients)) {
    if (n < 1) fail("--clients: counts must be >= 1");
    // Best of --reps runs: the machine's memory bandwidth drifts, the best run is the repeatable one.
    double secs = 0, tok_s = 0, dec_s = 0;
    long generated = 0;
    EngineStats st;
    for (int rep = 0; rep < std::max(1, a.reps); ++rep) {
      const ServeRun r = serve_once(*model, n, a.prompt, a.gen);
      if (r.tok_s > tok_s) secs = r.secs, tok_s = r.tok_s, generated = r.generated, st = r.stats;
      dec_s = std::max(dec_s, r.decode_tok_s);
    }
    if (n == 1) single = tok_s, single_decode = dec_s;
    rows.push_back({{"clients", n}, {"generated", generated}, {"seconds", secs}, {"aggregate_tok_s", tok_s},
                    {"speedup_vs_1", single > 0 ? tok_s / single : 0.0}, {"prefill_seconds", st.prefill_seconds},
                    {"decode_seconds", st.decode_seconds}, {"decode_steps", st.steps}, {"decode_tok_s", dec_s},
                    {"decode_speedup_vs_1", single_decode > 0 ? dec_s / single_decode : 0.0},
                    {"decode_matmul_gflop_s", dec_s * flop_per_token / 1e9}});
    if (!a.json)
      std::printf("clients %3d: %6ld tokens in %6.2f s = %8.1f tok/s aggregate (%.2fx single); decode phase %8.1f tok/s (%.2fx, %.0f GFLOP/s)\n",
                  n, generated, secs, tok_s, single > 0 ? tok_s / single : 0.0, dec_s,
                  single_decode > 0 ? dec_s / single_decode : 0.0, dec_s * flop_per_token / 1e9);
  }
  if (a.json) {
    nlohmann::json j = info;
    j.update({{"prompt_tokens", a.prompt}, {"gen_tokens", a.gen}, {"reps", a.reps}, {"serve", rows}});
    std::printf("%s\n", j.dump().c_str());
  }
}

void run(const BenchArgs& a) {
  set_threads(a.threads);
  if (a.cold) evict_weights(a.model);
  if (a.serve) return run_serve(a);
  if (a.prompt < 1 || a.gen < 1 || a.reps < 1) fail("-p, -n and --reps must be >= 1");
  auto model = load_llama(a.model, a.no_mmap);
  const ModelConfig& c = model->config();
  const ModelWeights& w = model->weights();
  std::vector<int> prompt(a.prompt);
  for (int i = 0; i < a.prompt; ++i) prompt[i] = 1 + (i * 7919) % (c.vocab_size - 1);

  Session s(*model, a.prompt + a.gen + 1, std::max(256, a.prompt));
  s.feed({prompt[0]});  // warm-up: page in the weights
  s.reset();
  double best_pp = 1e30, best_tg = 1e30, sum_pp = 0, sum_tg = 0;
  for (int r = 0; r < a.reps; ++r) {
    s.reset();
    double t0 = now();
    s.feed(prompt);
    double t1 = now();
    int tok = 1;
    for (int i = 0; i < a.gen; ++i) {
      const auto& lg = s.feed({tok});
      tok = int(std::max_element(lg.begin(), lg.end()) - lg.begin());
    }
    double t2 = now();
    best_pp = std::min(best_pp, t1 - t0), sum_pp += t1 - t0;
    best_tg = std::min(best_tg, t2 - t1), sum_tg += t2 - t1;
  }
  const double pp_s = sum_pp / a.reps, tg_s = sum_tg / a.reps;
  const double pp_tok_s = a.prompt / pp_s, tg_tok_s = a.gen / tg_s;
  // Attention flops are small next to the matmuls at these lengths but counted anyway.
  const double attn_flops = 4.0 * c.n_layers * c.q_dim() * (a.prompt * (a.prompt + 1) / 2.0);
  // The classifier runs for the last prompt row only (the others' logits are not wanted).
  const double body = matmul_params(w) - double(w.lm_head.numel()), head = double(w.lm_head.numel());
  const double pp_gflops = (2.0 * (body * a.prompt + head) + attn_flops) / pp_s / 1e9;
  const double bytes_per_token = double(w.matmul_bytes());
  const double tg_gbs = bytes_per_token * tg_tok_s / 1e9;
  nlohmann::json j = run_info(a, w);
  j.update({{"prompt_tokens", a.prompt}, {"gen_tokens", a.gen}, {"reps", a.reps},
            {"prefill_tok_s", pp_tok_s}, {"prefill_gflop_s", pp_gflops}, {"prefill_best_tok_s", a.prompt / best_pp},
            {"decode_tok_s", tg_tok_s}, {"decode_gb_s", tg_gbs}, {"decode_best_tok_s", a.gen / best_tg},
            {"weight_bytes", w.weight_bytes()}, {"mmap", !a.no_mmap}});
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    print_info(j);
    std::printf("prefill %4d tokens: %8.1f tok/s  %7.1f GFLOP/s\n", a.prompt, pp_tok_s, pp_gflops);
    std::printf("decode  %4d tokens: %8.1f tok/s  %7.1f GB/s\n", a.gen, tg_tok_s, tg_gbs);
  }
}

const bool reg_bench = add_command([](CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand("bench", "Measure prefill and decode speed");
  sub->add_option("-m,--model", a->model, "model directory or file")->required();
  sub->add_option("-p,--prompt", a->prompt, "prompt tokens");
  sub->add_option("-n,--gen", a->gen, "generated tokens");
  sub->add_option("--reps", a->reps, "repetitions (mean reported)");
  add_threads_option(sub, a->threads);
  add_run_flags(sub);
  add_no_mmap_flag(sub, a->no_mmap);
  sub->add_flag("--cold", a->cold, "drop the weight files from the page cache first, so they load in huge pages");
  sub->add_flag("--json", a->json, "JSON output");
  sub->add_flag("--serve", a->serve, "aggregate tok/s of concurrent requests through the batching engine");
  sub->add_option("--clients", a->clients, "with --serve: concurrent request counts, comma-separated");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
