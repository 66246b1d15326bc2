// What a long prompt does to the streams already decoding (not a Google Benchmark: one scenario
// run with chunked prefill and once prefilling prompts whole, as before).
//   bench_prefill_stall MODEL [--streams 15] [--prompt 4096] [--batch 256] [--chunk 0]
// (--chunk: prompt tokens per step while others decode, as `serve --prefill-chunk`; 0: the default)
// `streams` requests decode (greedy, short prompts); once each has produced 8 tokens, one request
// with a `prompt`-token prompt arrives. Reports the decoding streams' worst and p99 gap between
// two tokens while that prompt was being prefilled, and its time to first token; one JSON line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "model/weights.h"
#include "runtime/engine.h"

using namespace camelid;
using Clock = std::chrono::steady_clock;

namespace {

struct Outcome {
  double worst_gap_ms = 0, p99_gap_ms = 0, long_ttft_ms = 0;
};

Outcome run(Llama& m, bool interleave, int streams, int prompt_len, int n_batch, int chunk) {
  const int V = m.config().vocab_size;
  const int ctx = prompt_len + 8;
  Engine e(m, streams + 1, ctx, n_batch, false, interleave, 0, chunk);
  std::mutex mu;
  std::vector<double> gaps;  // ms, while the long prompt was in flight
  std::atomic<bool> long_submitted{false}, long_started{false};
  std::atomic<int> warm{0};
  Clock::time_point submitted_at, first_at;
  auto long_req = std::make_shared<EngineRequest>();
  for (int i = 0; i < prompt_len; ++i) long_req->prompt.push_back(100 + (i * 7919) % (V - 200));
  long_req->max_tokens = 1;
  long_req->sampling.temperature = 0;
  std::promise<void> long_done;
  long_req->on_token = [&](int) {
    first_at = Clock::now();
    long_started = true;
    return true;
  };
  long_req->on_finish = [&](const std::string&, int, int) { long_done.set_value(); };

  std::vector<std::promise<void>> done(static_cast<size_t>(streams));
  for (int s = 0; s < streams; ++s) {
    auto r = std::make_shared<EngineRequest>();
    r->prompt = {1, 100 + s, 200 + s, 300 + s};
    r->max_tokens = 1 << 20;  // until cancelled
    r->sampling.temperature = 0;
    auto last = std::make_shared<Clock::time_point>();
    auto count = std::make_shared<int>(0);
    r->on_token = [&, last, count, raw = r.get()](int) {
      const auto now = Clock::now();
      if (++*count == 8 && ++warm == streams && !long_submitted.exchange(true)) {
        submitted_at = now;
        e.submit(long_req);
      }
      // Every gap from the long prompt's arrival to this stream's first token after its first
      // token (prefilled whole, the stall ends only then).
      if (long_submitted && *count > 8 && !raw->cancelled) {
        std::lock_guard<std::mutex> lk(mu);
        gaps.push_back(std::chrono::duration<double, std::milli>(now - *last).count());
      }
      *last = now;
      if (long_started) raw->cancelled = true;  // the scenario is over for this stream
      return true;
    };
    r->on_finish = [&done, s](const std::string&, int, int) { done[size_t(s)].set_value(); };
    e.submit(r);
  }
  long_done.get_future().wait();
  for (auto& d : done) d.get_future().wait();
  Outcome o;
  std::sort(gaps.begin(), gaps.end());
  if (!gaps.empty()) {
    o.worst_gap_ms = gaps.back();
    o.p99_gap_ms = gaps[std::min(gaps.size() - 1, size_t(double(gaps.size()) * 0.99))];
  }
  o.long_ttft_ms = std::chrono::duration<double, std::milli>(first_at - submitted_at).count();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_prefill_stall MODEL [--streams 15] [--prompt 4096] [--batch 256] [--chunk 0]\n");
    return 1;
  }
  try {
    const int streams = int_arg(argc, argv, "--streams", 15), batch = int_arg(argc, argv, "--batch", 256);
    Llama m(std::shared_ptr<const ModelWeights>(load_model(argv[1])));
    // A 4K prompt, or as much as the model's context takes.
    const int prompt = std::min(int_arg(argc, argv, "--prompt", 4096), m.config().max_seq_len - 8);
    const int chunk = int_arg(argc, argv, "--chunk", 0);
    const Outcome chunked = run(m, true, streams, prompt, batch, chunk), whole = run(m, false, streams, prompt, batch, chunk);
    std::printf("%-28s %16s %14s %20s\n", "", "worst gap (ms)", "p99 gap (ms)", "long prompt TTFT (ms)");
    std::printf("%-28s %16.1f %14.1f %20.1f\n", "chunked prefill (default)", chunked.worst_gap_ms, chunked.p99_gap_ms,
                chunked.long_ttft_ms);
    std::printf("%-28s %16.1f %14.1f %20.1f\n", "whole-prompt prefill", whole.worst_gap_ms, whole.p99_gap_ms,
                whole.long_ttft_ms);
    nlohmann::json j = {{"model", argv[1]}, {"streams", streams}, {"prompt_tokens", prompt}, {"n_batch", batch}, {"chunk", chunk},
                        {"chunked", {{"worst_gap_ms", chunked.worst_gap_ms}, {"p99_gap_ms", chunked.p99_gap_ms},
                                     {"long_ttft_ms", chunked.long_ttft_ms}}},
                        {"whole", {{"worst_gap_ms", whole.worst_gap_ms}, {"p99_gap_ms", whole.p99_gap_ms},
                                   {"long_ttft_ms", whole.long_ttft_ms}}}};
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
