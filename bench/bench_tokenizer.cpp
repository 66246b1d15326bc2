// Encode throughput, one thread: the two French articles of the tokenizer corpus repeated to
// ~10 MB, for each Llama tokenizer. Reports MB/s (of UTF-8 input) and tokens/s.
//   ./build/bench/bench_tokenizer   (fixtures from $CAMELID_FIXTURES or ../shared/fixtures)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

using namespace camelid;

namespace {

std::string fixtures() {
  const char* env = std::getenv("CAMELID_FIXTURES");
  return env && *env ? env : CAMELID_FIXTURES_DEFAULT;
}

const std::string& corpus_10mb() {
  static const std::string text = [] {
    std::ifstream f(fixtures() + "/tokenizers/corpus.json");
    if (!f) throw std::runtime_error("cannot open " + fixtures() + "/tokenizers/corpus.json");
    const auto corpus = nlohmann::json::parse(f);
    // The two longest strings are the French articles.
    std::vector<std::string> all;
    for (const auto& s : corpus) all.push_back(s.is_string() ? s.get<std::string>() : s.value("text", ""));
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    const std::string two = all[0] + "\n" + all[1] + "\n";
    std::string out;
    while (out.size() < (10u << 20)) out += two;
    return out;
  }();
  return text;
}

void BM_encode(benchmark::State& st, const char* rel) {
  auto tok = Tokenizer::load(fixtures() + "/" + rel);
  const std::string& text = corpus_10mb();
  size_t tokens = 0;
  for (auto _ : st) {
    auto ids = tok->encode(text, true, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(text.size()));
  st.counters["MB/s"] = benchmark::Counter(double(text.size()) * double(st.iterations()) / 1e6, benchmark::Counter::kIsRate);
  st.counters["tok/s"] = benchmark::Counter(double(tokens) * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["tokens"] = double(tokens);
}

BENCHMARK_CAPTURE(BM_encode, llama2_tokenizer_json, "tokenizers/llama2/tokenizer.json")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_encode, llama2_tokenizer_model, "tokenizers/llama2/tokenizer.model")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_encode, llama3_tokenizer_json, "tokenizers/llama3/tokenizer.json")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
BENCHMARK_MAIN();
