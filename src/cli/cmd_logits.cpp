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
  int threads = 0, batch = 256;
  bool json = false, no_mmap = false;
};

const bool reg_ppl = add_command([](CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  auto* sub = app.add_subcommand("perplexity", "Mean negative log-likelihood of a token sequence");
  sub->add_option("-m,--model", a->model, "model directory or file")->required();
  auto* ids = sub->add_option("--ids-file", a->ids_file, "token ids (JSON array or comma/space separated)");
  auto* text = sub->add_option("-f,--file", a->text_file, "text file (tokenized with the model's tokenizer, BOS added)");
  ids->excludes(text);
  add_tokenizer_option(sub, a->tokenizer);
  add_threads_option(sub, a->threads);
  add_run_flags(sub);
  add_no_mmap_flag(sub, a->no_mmap);
  sub->add_option("--batch", a->batch, "chunk size");
  sub->add_flag("--json", a->json, "JSON output");
  sub->callback([a] {
    set_threads(a->threads);
    if (a->ids_file.empty() == a->text_file.empty()) fail("give the tokens as --ids-file FILE or the text as -f FILE (one of them)");
    auto model = load_llama(a->model, a->no_mmap);
    std::vector<int> tokens;
    if (!a->text_file.empty()) tokens = load_tokenizer_for(a->model, a->tokenizer)->encode(read_text_file(a->text_file), true, false);
    else tokens = read_ids_file(a->ids_file);
    const auto r = perplexity(*model, tokens, a->batch);
    if (a->json)
      std::printf("{\"tokens\":%d,\"mean_nll\":%s,\"ppl\":%s}\n", r.tokens,
                  json_float(r.mean_nll).c_str(), json_float(r.ppl).c_str());
    else
      std::printf("tokens %d  mean_nll %.6f  perplexity %.4f\n", r.tokens, r.mean_nll, r.ppl);
  });
});

}  // namespace
}  // namespace camelid::cli
