// Memory the KV cache holds for N slots of a long context, against what a [slots x ctx] cache
// reserves (not a Google Benchmark: one run).
//   bench_kv_memory MODEL [--slots 16] [--ctx 4096] [--prompt 200] [--gen 32] [--kv f32|f16|q8_0]
// Submits one request per slot at once (random ordinary token ids, greedy, --gen tokens each) and
// prints one JSON line: the bytes a contiguous cache allocated up front (slots x ctx x bytes per
// token, zero-filled), the paged pool's bytes after the run, and the process's resident memory
// before the engine was made and after the run.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "model/weights.h"
#include "runtime/engine.h"

using namespace camelid;

namespace {

long rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string key;
  long kb = 0;
  while (f >> key)
    if (key == "VmRSS:") return f >> kb, kb << 10;
    else f.ignore(256, '\n');
  return 0;
}

const char* str_arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], name)) return argv[i + 1];
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_kv_memory MODEL [--slots 16] [--ctx 4096] [--prompt 200] [--gen 32] [--kv f32]\n");
    return 1;
  }
  try {
    const int slots = int_arg(argc, argv, "--slots", 16), ctx = int_arg(argc, argv, "--ctx", 4096),
              n_prompt = int_arg(argc, argv, "--prompt", 200), gen = int_arg(argc, argv, "--gen", 32);
    Llama m(std::shared_ptr<const ModelWeights>(load_model(argv[1])));
    m.set_kv_type(dtype_from_name(str_arg(argc, argv, "--kv", "f32")));
    const int V = m.config().vocab_size;
    const long rss0 = rss_bytes();
    Engine e(m, slots, ctx);
    std::vector<std::promise<void>> done(static_cast<size_t>(slots));
    for (int s = 0; s < slots; ++s) {
      auto r = std::make_shared<EngineRequest>();
      for (int i = 0; i < n_prompt; ++i) r->prompt.push_back(100 + (s * 131 + i * 7919) % (V - 200));
      r->max_tokens = gen;
      r->sampling.temperature = 0;
      r->on_finish = [&done, s](const std::string&, int, int) { done[size_t(s)].set_value(); };
      e.submit(r);
    }
    for (auto& d : done) d.get_future().wait();
    const EngineStats st = e.stats();
    const size_t per_token = KVCache::bytes_per_token(m.config(), m.kv_type());
    nlohmann::json j = {{"model", argv[1]},
                        {"kv_type", dtype_name(m.kv_type())},
                        {"slots", slots},
                        {"ctx", e.ctx()},
                        {"bytes_per_token", per_token},
                        {"contiguous_bytes", size_t(slots) * size_t(e.ctx()) * per_token},
                        {"paged_bytes_after_run", st.kv_bytes},
                        {"paged_budget_bytes", st.kv_budget_bytes},
                        {"tokens_held", long(slots) * (n_prompt + gen)},
                        {"rss_before_engine", rss0},
                        {"rss_after_run", rss_bytes()}};
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
