// `camelid serve`: the OpenAI-compatible HTTP server.
#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/speculative_args.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "model/kv_cache.h"
#include "server/server.h"

namespace camelid::cli {
namespace {

struct ServeArgs {
  std::string model, name;
  ServerOptions opt;
  int threads = 0;
  double timeout_s = 10;
  int max_body_mb = 8;
  SpeculativeArgs spec;
  double kv_budget_mib = 0;  // 0: from the context, the slots and the memory
};

// Bytes the kernel reports as available (MemAvailable), or 0 when unknown.
size_t available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  while (f >> key >> kb)
    if (key == "MemAvailable:") return kb << 10;
    else f.ignore(256, '\n');
  return 0;
}

// Bytes of the model's files (a file, or the files of a directory).
size_t model_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const uintmax_t n = fs::file_size(path, ec);
    return ec ? 0 : size_t(n);
  }
  size_t total = 0;
  for (auto& e : fs::directory_iterator(path, ec))
    if (e.is_regular_file(ec)) total += size_t(e.file_size(ec));
  return total;
}

// The KV cache is a pool of blocks shared by the sequences (memory follows the tokens held), so
// --parallel does not multiply the context. --ctx not given: the model's whole context, unless half
// of the memory left after the weights holds fewer positions; then as many as it holds (a multiple
// of 256). --kv-budget not given: every slot's whole context, at most that half of the memory (and
// at least one context). A draft model's cache may hold a whole context per slot (see
// Engine::enable_speculative): a position counts in both caches, and the draft's whole cache
// comes off --kv-budget first. Returns the model's budget in positions; sets opt.ctx.
long size_kv_cache(const Llama& m, const std::string& path, const Llama* draft, const std::string& draft_path,
                   ServerOptions& opt, double budget_mib) {
  const int max_ctx = m.config().max_seq_len;
  const size_t per_token = KVCache::bytes_per_token(m.config(), m.kv_type());
  const size_t draft_per_token = draft ? KVCache::bytes_per_token(draft->config(), draft->kv_type()) : 0;
  const size_t avail = available_memory(), weights = model_bytes(path) + (draft ? model_bytes(draft_path) : 0);
  const size_t half = avail > weights ? (avail - weights) / 2 : 0;  // the memory the caches may take
  // Positions that half holds in both caches (0: unknown).
  size_t fit = avail == 0 || per_token == 0 ? 0 : half / (per_token + draft_per_token);
  if (fit > 256) fit -= fit % 256;
  if (opt.ctx == 0)
    opt.ctx = fit == 0 && avail == 0 ? std::min(max_ctx, 4096)
                                     : int(std::min<size_t>(size_t(max_ctx), std::max<size_t>(fit, std::min(256, max_ctx))));
  opt.ctx = std::min(opt.ctx, max_ctx);
  // The draft's cache as Engine::enable_speculative makes it (no budget: whole blocks per slot).
  const double draft_bytes =
      draft ? double(KVCache::full_positions(opt.parallel, std::min(opt.ctx, draft->config().max_seq_len))) * double(draft_per_token)
            : 0;
  long budget;
  if (budget_mib > 0) {
    budget = long(std::max(0.0, budget_mib * 1048576.0 - draft_bytes) / double(per_token));
    if (budget < 1) {
      char after[96] = "";
      if (draft) std::snprintf(after, sizeof after, ", after %.2f MiB for the draft model's cache", draft_bytes / 1048576.0);
      fail("--kv-budget ", budget_mib, " MiB holds no position (", per_token, " bytes per token", after, ")");
    }
  } else {
    // Every slot's context, within half the memory after the weights less the draft's worst case
    // (its cache takes whole contexts per slot as it goes), and at least one context.
    budget = long(opt.parallel) * opt.ctx;
    if (fit > 0) {
      const double room = double(half) - draft_bytes;
      budget = std::max<long>(opt.ctx, std::min<long>(budget, long(std::max(0.0, room) / double(per_token))));
    }
  }
  budget = long(KVCache::blocks_for(budget)) * KVCache::kBlockSize;
  opt.ctx = int(std::min<long>(opt.ctx, budget));  // the engine clamps it so too
  std::printf("camelid: KV cache budget %ld tokens = %.1f MiB (%.1f KiB per token, %s; %.1f GiB available, %.2f GiB "
              "of weights); --ctx %d per sequence (model max %d), up to %d sequences at once\n",
              budget, double(budget) * double(per_token) / 1048576.0, per_token / 1024.0, dtype_name(m.kv_type()),
              avail / 1073741824.0, weights / 1073741824.0, opt.ctx, max_ctx, opt.parallel);
  if (draft)
    std::printf("camelid: draft model's KV cache up to %.1f MiB (%.1f KiB per token)\n", draft_bytes / 1048576.0,
                draft_per_token / 1024.0);
  return budget;
}

std::mutex g_server_mu;
Server* g_server = nullptr;  // under g_server_mu

// SIGINT/SIGTERM are blocked in every thread and taken by one thread that waits for them: a
// signal handler could not safely stop the server (locks, joins). The first signal cancels what is
// in flight and stops serving; a second one, or one during loading, exits at once.
void take_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // threads started later (OpenMP, HTTP) inherit it
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    {
      std::lock_guard<std::mutex> lk(g_server_mu);
      if (!g_server) std::_Exit(128 + sig);
      std::fprintf(stderr, "camelid: stopping (cancelling requests in flight; again to exit now)\n");
      g_server->stop();
    }
    sigwait(&set, &sig);
    std::_Exit(128 + sig);
  }).detach();
}

void run(ServeArgs& a) {
  take_signals();
  set_threads(a.threads);
  if (a.opt.parallel < 1 || a.opt.parallel > 256) fail("--parallel must be in 1..256, got ", a.opt.parallel);
  if (a.opt.prefill_chunk < 0 || a.opt.prefill_chunk > 256) fail("--prefill-chunk must be in 0..256, got ", a.opt.prefill_chunk);
  if (a.opt.ctx != 0 && a.opt.ctx < 8) fail("--ctx must be >= 8 (or 0: fit the memory), got ", a.opt.ctx);
  if (!(a.kv_budget_mib >= 0 && a.kv_budget_mib <= 1e9)) fail("--kv-budget must be in 0..1e9 MiB, got ", a.kv_budget_mib);
  if (a.opt.port < 0 || a.opt.port > 65535) fail("--port must be in 0..65535");
  HttpLimits& lim = a.opt.limits;
  // Each connection holds a thread and a descriptor; httplib 0.11 can't use descriptors >= 1024.
  if (lim.max_connections < 1 || lim.max_connections > 900) fail("--max-connections must be in 1..900, got ", lim.max_connections);
  if (!(a.timeout_s >= 0.1 && a.timeout_s <= 3600)) fail("--timeout must be in 0.1..3600 seconds, got ", a.timeout_s);
  if (a.max_body_mb < 1 || a.max_body_mb > 1024) fail("--max-body-mb must be in 1..1024, got ", a.max_body_mb);
  lim.head_timeout_ms = int(a.timeout_s * 1000);
  lim.idle_timeout_ms = std::min(lim.head_timeout_ms, 5000);
  lim.write_timeout_ms = 3 * lim.head_timeout_ms;
  lim.body_timeout_ms = 6 * lim.head_timeout_ms;
  lim.max_body_bytes = size_t(a.max_body_mb) << 20;
  lim.max_bodies_in_flight = std::max(lim.max_bodies_in_flight, 4 * lim.max_body_bytes);

  auto model = load_llama(a.model);
  auto tok = load_tokenizer_for(a.model, "");
  ChatTemplate tmpl = load_chat_template_for(a.model, tok.get());  // a template that can't parse stops us here
  auto draft = load_draft(a.spec, *model, false, false);
  if (a.spec.enabled()) {
    SpeculativeOptions so;
    so.max_draft = a.spec.draft_max;
    so.draft_model = draft.get();
    a.opt.speculative = so;
  }
  std::filesystem::path p(a.model);
  a.opt.model_name = !a.name.empty() ? a.name : (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  a.opt.kv_budget_tokens = size_kv_cache(*model, a.model, draft.get(), a.spec.draft, a.opt, a.kv_budget_mib);
  Server server(*model, *tok, tmpl, a.opt);
  const int port = server.bind();
  {
    std::lock_guard<std::mutex> lk(g_server_mu);
    g_server = &server;
  }
  std::printf("camelid: serving %s (%d parallel, %d-token context%s%s) - listening on http://%s:%d\n",
              a.opt.model_name.c_str(), a.opt.parallel, a.opt.ctx, kernels::bf16_dot_active() ? ", bf16 dot" : "",
              !a.spec.enabled() ? "" : draft ? ", speculative: draft model" : ", speculative: prompt lookup",
              a.opt.host.c_str(), port);
  std::printf("camelid: chat in a browser at http://%s:%d/\n", a.opt.host.c_str(), port);
  std::fflush(stdout);
  server.run();
  std::lock_guard<std::mutex> lk(g_server_mu);
  g_server = nullptr;
}

const bool reg_serve = add_command([](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  a->opt.ctx = 0;  // fit the memory
  auto* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  sub->add_option("-m,--model", a->model, "model directory")->required();
  sub->add_option("--host", a->opt.host, "address to bind (default 127.0.0.1)");
  sub->add_option("--port", a->opt.port, "port (0 = any free port)");
  sub->add_option("--api-key", a->opt.api_key, "require Authorization: Bearer KEY");
  sub->add_option("--parallel", a->opt.parallel,
                  "sequences decoded together (default 4); they share the KV cache's budget");
  sub->add_option("--ctx", a->opt.ctx,
                  "context size per sequence (default 0: the model's, or what half the free memory holds; at most the KV budget)");
  sub->add_option("--kv-budget", a->kv_budget_mib,
                  "MiB the KV cache may hold over all sequences (default 0: every sequence's whole context, at most "
                  "half the free memory); a request waits until the blocks it may need are free");
  sub->add_option("--prefill-chunk", a->opt.prefill_chunk,
                  "prompt tokens prefilled per step while other requests decode (default 0: as many as they are, at "
                  "least 16, so a new prompt at most doubles their gap between tokens; larger: its first token sooner)");
  sub->add_option("--name,--alias", a->name,
                  "model id reported to clients (default: the file or directory name); any requested name is served");
  sub->add_option("--threads", a->threads, "threads (0 = all cores)");
  sub->add_option("--max-connections", a->opt.limits.max_connections,
                  "connections served at once (default 512); past it: 503, and only /health is answered");
  sub->add_option("--timeout", a->timeout_s,
                  "seconds for a request head to arrive (default 10); the body gets 6x, a client that stops reading 3x");
  sub->add_option("--max-body-mb", a->max_body_mb, "largest request body in MiB, after decompression (default 8)");
  add_speculative_options(sub, a->spec);
  sub->footer(
      "Speculative decoding (--draft MODEL or --lookup, --draft-max N) works with continuous batching: in\n"
      "each step, every sequence without a grammar, response_format, enforced tool_choice or logprobs adds\n"
      "its guesses to the batch and keeps those the model agrees with (greedy output identical to plain\n"
      "decoding); the others decode plainly beside them. A draft model keeps its own KV cache per slot.");
  add_run_flags(sub);
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
