// `camelid logits`: per-position logsumexp and top-k logits as JSON lines (for conformance
// checks), and `camelid perplexity`.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace camelid::cli {
namespace {

struct LogitsArgs {
  std::string model, ids, positions = "all";
  int top = 10, threads = 0, batch = 256;
  bool full_last = false, json = true, no_mmap = false;
};

std::set<int> parse_positions(const std::string& spec, int n) {
  std::set<int> out;
  if (spec == "all") {
    for (int i = 0; i < n; ++i) out.insert(i);
  } else if (spec == "last") {
    out.insert(n - 1);
  } else {
    for (int p : parse_ids(spec)) {
      if (p >= n) fail("--positions: ", p, " is beyond the last position ", n - 1);
      out.insert(p);
    }
  }
  return out;
}

std::string position_json(int pos, const float* row, int V, int top) {
  std::vector<int> idx(V);
  for (int i = 0; i < V; ++i) idx[i] = i;
  top = std::min(top, V);
  std::partial_sort(idx.begin(), idx.begin() + top, idx.end(),
                    [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  std::string s = "{\"pos\":" + std::to_string(pos) + ",\"lse\":" + json_float(logsumexp(row, V)) + ",\"top\":[";
  for (int k = 0; k < top; ++k)
    s += (k ? ",[" : "[") + std::to_string(idx[k]) + "," + json_float(row[idx[k]]) + "]";
  return s + "]}";
}

void run_logits(const LogitsArgs& a) {
  set_threads(a.threads);
  auto model = load_llama(a.model, a.no_mmap);
  const std::vector<int> ids = parse_ids(a.ids);
  const int n = int(ids.size()), V = model->config().vocab_size;
  const std::set<int> want = parse_positions(a.positions, n);
  if (a.top < 1) fail("--top must be >= 1");
  Session s(*model, n, a.batch);
  for (int i = 0; i < n; i += a.batch) {
    const int end = std::min(n, i + a.batch);
    const auto& logits = s.feed(std::vector<int>(ids.begin() + i, ids.begin() + end), true);
    for (int p = i; p < end; ++p) {
      const float* row = &logits[size_t(p - i) * V];
      if (want.count(p)) std::printf("%s\n", position_json(p, row, V, a.top).c_str());
      if (a.full_last && p == n - 1) {
        std::string s2 = "{\"pos\":" + std::to_string(p) + ",\"logits\":[";
        for (int v = 0; v < V; ++v) s2 += (v ? "," : "") + json_float(row[v]);
        std::printf("%s]}\n", s2.c_str());
      }
    }
  }
}

const bool reg_logits = add_command([](CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  auto* sub = app.add_subcommand("logits", "Print logsumexp and top logits per position (JSON lines)");
  sub->add_option("-m,--model", a->model, "model directory or file")->required();
  sub->add_option("--ids", a->ids, "prompt token ids, comma-separated")->required();
  sub->add_option("--positions", a->positions, "all | last | comma-separated positions");
  sub->add_option("--top", a->top, "how many top logits per position");
  sub->add_flag("--full-last", a->full_last, "also print every logit of the last position");
  sub->add_flag("--json", a->json, "JSON lines output (the only format)");
  add_threads_option(sub, a->threads);
  add_run_flags(sub);
  add_no_mmap_flag(sub, a->no_mmap);
  sub->add_option("--batch", a->batch, "prefill chunk size");
  sub->callback([a] { run_logits(*a); });
});

struct PplArgs {
  std::string model, ids_file, text_file, tokenizer;
  int threads = 0, batch = 256, ctx = 0;
  bool json = false, no_mmap = false;
};

// llama-perplexity's default window, used when the text does not fit the model and -c is not given.
constexpr int kDefaultWindow = 512;

void run_perplexity(const PplArgs& a) {
  set_threads(a.threads);
  if (a.ids_file.empty() == a.text_file.empty()) fail("give the tokens as --ids-file FILE or the text as -f FILE (one of them)");
  if (a.ctx < 0) fail("-c/--ctx must be >= 0, got ", a.ctx);
  auto model = load_llama(a.model, a.no_mmap);
  std::vector<int> tokens;
  int bos = -1;  // put at the start of each window when the sequence starts with one
  if (!a.text_file.empty()) {
    auto tok = load_tokenizer_for(a.model, a.tokenizer);
    tokens = tok->encode(read_text_file(a.text_file), true, false);
    if (tok->adds_bos()) bos = tok->bos_id();
  } else {
    tokens = read_ids_file(a.ids_file);
    if (!tokens.empty() && tokens[0] == model->config().bos_id) bos = tokens[0];
  }
  const int max_ctx = model->config().max_seq_len;
  // The whole sequence at once when it fits and no window was asked for; else windows.
  const bool whole = a.ctx == 0 && int(std::min<size_t>(tokens.size(), size_t(1) << 30)) <= max_ctx;
  const int window = a.ctx > 0 ? a.ctx : std::min(kDefaultWindow, max_ctx);
  const PerplexityResult r = whole ? perplexity(*model, tokens, a.batch) : perplexity_windows(*model, tokens, window, bos, a.batch);
  const int dropped = whole ? 0 : int(tokens.size()) - r.chunks * window;
  if (a.json) {
    std::string j = "{\"tokens\":" + std::to_string(r.tokens) + ",\"mean_nll\":" + json_float(r.mean_nll) +
                    ",\"ppl\":" + json_float(r.ppl);
    if (whole)
      j += ",\"mode\":\"whole\"";
    else
      j += ",\"mode\":\"windows\",\"ctx\":" + std::to_string(window) + ",\"stride\":" + std::to_string(window) +
           ",\"chunks\":" + std::to_string(r.chunks) + ",\"scored_from\":" + std::to_string(r.scored_from) +
           ",\"dropped_tokens\":" + std::to_string(dropped);
    std::printf("%s}\n", j.c_str());
    return;
  }
  if (!whole)
    std::printf("windows of %d tokens, stride %d (llama-perplexity's method): %d chunks, each scoring its last %d "
                "predictions (positions %d..%d); %d tokens past the last whole window dropped\n",
                window, window, r.chunks, window - 1 - r.scored_from, r.scored_from, window - 2, dropped);
  std::printf("tokens %d  mean_nll %.6f  perplexity %.4f\n", r.tokens, r.mean_nll, r.ppl);
}

const bool reg_ppl = add_command([](CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  auto* sub = app.add_subcommand("perplexity", "Mean negative log-likelihood of a token sequence");
  sub->add_option("-m,--model", a->model, "model directory or file")->required();
  auto* ids = sub->add_option("--ids-file", a->ids_file, "token ids (JSON array or comma/space separated)");
  auto* text = sub->add_option("-f,--file", a->text_file, "text file (tokenized with the model's tokenizer, BOS added)");
  ids->excludes(text);
  add_tokenizer_option(sub, a->tokenizer);
  add_ctx_option(sub, a->ctx,
                 "window size: score the text in windows of this many tokens as llama-perplexity does (0: the whole "
                 "text at once when it fits the model's context, else windows of 512)");
  add_threads_option(sub, a->threads);
  add_run_flags(sub);
  add_no_mmap_flag(sub, a->no_mmap);
  sub->add_option("--batch", a->batch, "chunk size");
  sub->add_flag("--json", a->json, "JSON output");
  sub->callback([a] { run_perplexity(*a); });
});

}  // namespace
}  // namespace camelid::cli
