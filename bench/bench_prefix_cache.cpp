// Time to first token of each turn of a chat through the batching engine, with and without the
// prefix cache (not a Google Benchmark: one run of a whole conversation each way).
//   bench_prefix_cache MODEL [--turns 10] [--system 200] [--user 64] [--reply 64]
// Turn k's prompt is the system prompt, every earlier user message and reply, and a new user
// message (random ordinary token ids); replies are greedy and --reply tokens long. Prints a table
// and one JSON line with the last turn's time to first token each way and their ratio.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "model/weights.h"
#include "runtime/engine.h"

using namespace camelid;
using Clock = std::chrono::steady_clock;

namespace {

struct Turn {
  int prompt_tokens = 0;
  double ttft_ms = 0;
};

std::vector<Turn> converse(Llama& m, bool prefix_cache, int turns, int n_system, int n_user, int n_reply) {
  const int V = m.config().vocab_size;
  uint64_t x = 12345;
  auto token = [&] {  // ordinary ids, away from the specials at both ends of a vocabulary
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return 100 + int((x >> 33) % uint64_t(V - 200));
  };
  std::vector<int> prompt = {1};
  for (int i = 0; i < n_system; ++i) prompt.push_back(token());
  const int ctx = 1 + n_system + turns * (n_user + n_reply) + 8;
  Engine e(m, 1, ctx, 256, prefix_cache);
  std::vector<Turn> out;
  for (int t = 0; t < turns; ++t) {
    for (int i = 0; i < n_user; ++i) prompt.push_back(token());
    auto r = std::make_shared<EngineRequest>();
    r->prompt = prompt;
    r->max_tokens = n_reply;
    r->sampling.temperature = 0;
    std::vector<int> reply;
    Clock::time_point first;
    std::promise<void> done;
    r->on_token = [&](int id) {
      if (reply.empty()) first = Clock::now();
      reply.push_back(id);
      return true;
    };
    r->on_finish = [&](const std::string&, int, int) { done.set_value(); };
    const auto t0 = Clock::now();
    e.submit(r);
    done.get_future().wait();
    out.push_back({int(prompt.size()), std::chrono::duration<double, std::milli>(first - t0).count()});
    // The reply as the next prompt holds it: exactly n_reply tokens (an early stop is padded).
    while (int(reply.size()) < n_reply) reply.push_back(token());
    prompt.insert(prompt.end(), reply.begin(), reply.end());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_prefix_cache MODEL [--turns 10] [--system 200] [--user 64] [--reply 64]\n");
    return 1;
  }
  try {
    const int turns = int_arg(argc, argv, "--turns", 10), n_system = int_arg(argc, argv, "--system", 200),
              n_user = int_arg(argc, argv, "--user", 64), n_reply = int_arg(argc, argv, "--reply", 64);
    Llama m(std::shared_ptr<const ModelWeights>(load_model(argv[1])));
    const auto with = converse(m, true, turns, n_system, n_user, n_reply);
    const auto without = converse(m, false, turns, n_system, n_user, n_reply);
    std::printf("%5s %14s %18s %18s %8s\n", "turn", "prompt tokens", "TTFT cached (ms)", "TTFT uncached (ms)", "speed-up");
    for (int t = 0; t < turns; ++t)
      std::printf("%5d %14d %18.1f %18.1f %7.1fx\n", t + 1, with[t].prompt_tokens, with[t].ttft_ms, without[t].ttft_ms,
                  without[t].ttft_ms / with[t].ttft_ms);
    nlohmann::json j = {{"model", argv[1]},
                        {"turns", turns},
                        {"last_turn_prompt_tokens", with.back().prompt_tokens},
                        {"last_turn_ttft_ms_cached", with.back().ttft_ms},
                        {"last_turn_ttft_ms_uncached", without.back().ttft_ms},
                        {"speedup", without.back().ttft_ms / with.back().ttft_ms}};
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
