// What sampling one token costs on a Llama 3 vocabulary (128,256 logits) and a Llama 2 one
// (32,000), per setting: OpenAI's defaults (temperature 1, no top-k, top-p 1), top-p 0.95, min-p
// 0.05, top-k 40 (camelid's CLI default). Logits are peaked as a trained model's (normal, sd 2,
// with 20 tokens 12 higher: they hold ~96% of the mass) or flat (sd 0.1: a random checkpoint's).
// Compare with a decode step (`camelid bench`): a small Llama 3.2's is ~20-40 ms on a laptop CPU.
//   ./build/bench/bench_sampler
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "runtime/sampler.h"

using namespace camelid;

namespace {

std::vector<float> logits(int n, bool peaked) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, peaked ? 2.f : 0.1f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = d(rng);
  if (peaked)
    for (int i = 0; i < 20; ++i) x[size_t(rng() % n)] += 12.f;
  return x;
}

// args: vocabulary, peaked (1) or flat (0), setting (0 defaults, 1 top-p 0.95, 2 min-p 0.05, 3 top-k 40)
void BM_sample(benchmark::State& state) {
  const int n = int(state.range(0));
  const std::vector<float> base = logits(n, state.range(1) != 0);
  SamplingParams p;
  p.temperature = 1.f, p.top_k = 0, p.top_p = 1.f, p.min_p = 0.f, p.repeat_penalty = 1.f;
  switch (state.range(2)) {
    case 1: p.top_p = 0.95f; break;
    case 2: p.min_p = 0.05f; break;
    case 3: p.top_k = 40; break;
    default: break;
  }
  Sampler s(p);
  std::vector<float> x;
  const std::vector<int> history;
  for (auto _ : state) {
    x = base;
    benchmark::DoNotOptimize(s.sample(x.data(), n, history));
  }
}

}  // namespace

BENCHMARK(BM_sample)->ArgNames({"vocab", "peaked", "setting"})
    ->ArgsProduct({{32000, 128256}, {1, 0}, {0, 1, 2, 3}})->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
