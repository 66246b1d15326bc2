// Matmul kernels on the bench-450m shapes: GFLOP/s (prefill) and GB/s of weights (decode).
#include <benchmark/benchmark.h>

#include <omp.h>

#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace camelid;

namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  Tensor t;
  Weights(int rows, int cols, DType dt) : bytes(size_t(rows) * cols * dtype_size(dt)) {
    std::mt19937 rng(1);
    for (auto& b : bytes) b = uint8_t(rng() & 0x3f);  // small finite values in every dtype
    t = Tensor{bytes.data(), dt, rows, cols};
  }
};

void BM_matmul(benchmark::State& st) {
  const int O = int(st.range(0)), K = int(st.range(1)), T = int(st.range(2));
  const DType dt = DType(st.range(3));
  const auto isa = kernels::Isa(st.range(4));
  if (!kernels::isa_supported(isa)) return st.SkipWithError("ISA not supported");
  kernels::set_isa(isa);
  Weights w(O, K, dt);
  std::vector<float> x(size_t(T) * K, 0.5f), y(size_t(T) * O);
  for (auto _ : st) {
    kernels::matmul(x.data(), T, w.t, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * O * K * T * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GB/s"] = benchmark::Counter(double(w.bytes.size()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string(dtype_name(dt)) + " " + kernels::isa_name(isa) + " threads=" + std::to_string(omp_get_max_threads()));
}

void shapes(benchmark::internal::Benchmark* b) {
  const int shapes[][2] = {{1536, 1536}, {512, 1536}, {4096, 1536}, {1536, 4096}, {32000, 1536}};
  for (int isa : {int(kernels::Isa::AVX512), int(kernels::Isa::AVX2)})
    for (int dt : {int(DType::F32), int(DType::F16), int(DType::BF16)})
      for (int T : {1, 16, 128})
        for (auto& s : shapes) b->Args({s[0], s[1], T, dt, isa});
}

// Read bandwidth ceiling: sum a 1 GB buffer with all threads.
void BM_memory_read(benchmark::State& st) {
  std::vector<float> buf(size_t(256) << 20, 1.f);
  for (auto _ : st) {
    float total = 0;
#pragma omp parallel for reduction(+ : total)
    for (size_t i = 0; i < buf.size(); i += 16) {
      float s = 0;
      for (int j = 0; j < 16; ++j) s += buf[i + j];
      total += s;
    }
    benchmark::DoNotOptimize(total);
  }
  st.counters["GB/s"] = benchmark::Counter(double(buf.size()) * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_matmul)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_memory_read)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
