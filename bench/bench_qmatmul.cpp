// Quantized matmul (integer dot products) on the bench-450m-like shapes: decode (T = 1, GB/s of
// weights read) and prefill (T = 128, GOP/s, 2 ops per multiply-add). Activation rounding is
// included in the timings, as the model pays it.
//   ./build/bench/bench_qmatmul --benchmark_filter='q4_0'
// Threads: OMP_NUM_THREADS (the goal figures are for 2).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace camelid;

namespace {

// Random payload bytes with small finite f16 scales: the timing does not depend on the values.
struct QWeights {
  std::vector<uint8_t> bytes;
  Tensor t;
  QWeights(DType dt, int rows, int cols) : bytes(row_bytes(dt, cols) * rows) {
    std::mt19937 rng(1);
    for (auto& b : bytes) b = uint8_t(rng());
    const DTypeInfo& info = dtype_info(dt);
    for (size_t blk = 0; blk < bytes.size() / info.block_bytes; ++blk)
      for (int s = 0; s < info.n_scales; ++s) {
        const uint16_t v = f32_to_f16(0.01f);
        std::memcpy(&bytes[blk * info.block_bytes + info.scale_offset[s]], &v, 2);
      }
    t = Tensor{bytes.data(), dt, rows, cols};
  }
};

// Args: rows, cols, T, weight dtype, ISA, VNNI.
void BM_qmatmul(benchmark::State& st) {
  const int O = int(st.range(0)), K = int(st.range(1)), T = int(st.range(2));
  const DType dt = DType(st.range(3));
  const auto isa = kernels::Isa(st.range(4));
  const bool vnni = st.range(5) != 0;
  if (!kernels::isa_supported(isa)) return st.SkipWithError("ISA not supported");
  kernels::set_isa(isa);
  if (kernels::set_vnni(vnni) != vnni) return st.SkipWithError("VNNI not available");
  QWeights w(dt, O, K);
  std::vector<float> x(size_t(T) * K), y(size_t(T) * O);
  std::mt19937 rng(2);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto& v : x) v = d(rng);
  for (auto _ : st) {
    kernels::matmul_quantized(x.data(), T, w.t, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GOP/s"] = benchmark::Counter(2.0 * O * K * T * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GB/s"] = benchmark::Counter(double(w.bytes.size()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string(dtype_name(dt)) + " " + kernels::isa_name(isa) + (vnni ? "+vnni" : "") +
              " threads=" + std::to_string(omp_get_max_threads()));
  kernels::set_vnni(true);
}

void shapes(benchmark::internal::Benchmark* b) {
  const DType types[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q5_K, DType::Q4_1, DType::Q5_0,
                         DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::IQ4_NL, DType::IQ4_XS};
  const int shapes[][2] = {{2048, 2048}, {5632, 2048}};
  const std::pair<int, int> isas[] = {{int(kernels::Isa::AVX512), 1}, {int(kernels::Isa::AVX512), 0}, {int(kernels::Isa::AVX2), 1},
                                      {int(kernels::Isa::AVX2), 0}};
  for (auto [isa, vnni] : isas)
    for (DType dt : types)
      for (int T : {1, 128})
        for (auto& s : shapes) b->Args({s[0], s[1], T, int(dt), isa, vnni});
}

// Decode with the weights in DRAM, as in a model too large for the caches: the call cycles
// through copies of the matrix totalling 256 MB. Args: rows, cols, weight dtype.
void BM_qmatmul_cold(benchmark::State& st) {
  const int O = int(st.range(0)), K = int(st.range(1));
  const DType dt = DType(st.range(2));
  kernels::set_isa(kernels::best_isa());
  kernels::set_vnni(true);
  const size_t bytes = row_bytes(dt, K) * O;
  const int copies = int(std::max<size_t>(2, (size_t(256) << 20) / bytes));
  std::vector<QWeights> ws;
  for (int i = 0; i < copies; ++i) ws.emplace_back(dt, O, K);
  std::vector<float> x(K, 0.5f), y(O);
  int i = 0;
  for (auto _ : st) {
    kernels::matmul_quantized(x.data(), 1, ws[i].t, y.data());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % copies;
  }
  st.counters["GB/s"] = benchmark::Counter(double(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string(dtype_name(dt)) + " " + kernels::isa_name(kernels::best_isa()) + (kernels::vnni_active() ? "+vnni" : "") +
              " threads=" + std::to_string(omp_get_max_threads()));
}

// Activation rounding alone (part of every call above).
void BM_quantize_activations(benchmark::State& st) {
  const int T = int(st.range(0)), K = 2048;
  const DType type = DType(st.range(1));
  std::vector<float> x(size_t(T) * K, 0.3f);
  std::vector<uint8_t> q(row_bytes(type, K) * T);
  kernels::set_isa(kernels::best_isa());
  for (auto _ : st) {
    kernels::quantize_activations(type, x.data(), T, K, q.data());
    benchmark::DoNotOptimize(q.data());
  }
  st.counters["GB/s"] = benchmark::Counter(double(x.size()) * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(dtype_name(type));
}

}  // namespace

BENCHMARK(BM_qmatmul)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_qmatmul_cold)->ArgsProduct({{2048, 5632}, {2048}, {int(DType::Q8_0), int(DType::Q4_0), int(DType::Q4_K), int(DType::Q6_K)}})
    ->UseRealTime()->Unit(benchmark::kMillisecond);
// The bench-450m shapes (dim 1536, hidden 4096, 8 KV heads of 64): rows of 1536 Q4_0 weights are
// 864 bytes, so every other row starts mid cache line.
BENCHMARK(BM_qmatmul_cold)->Name("BM_qmatmul_cold_b450")->Apply([](benchmark::internal::Benchmark* b) {
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
    for (auto [rows, cols] : {std::pair{1536, 1536}, {512, 1536}, {4096, 1536}, {1536, 4096}}) b->Args({rows, cols, int(dt)});
})->UseRealTime()->Unit(benchmark::kMillisecond);
// Small batches (batched decode, short prompts) with the best instruction set.
BENCHMARK(BM_qmatmul)->ArgsProduct({{2048}, {2048}, {2, 4, 8, 16, 32}, {int(DType::Q8_0), int(DType::Q4_0), int(DType::Q4_K), int(DType::Q6_K)},
                                    {int(kernels::Isa::AVX512)}, {1}})->Name("BM_qmatmul_small_batch")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_quantize_activations)->ArgsProduct({{1, 128}, {int(DType::Q8_0), int(DType::Q8_1), int(DType::Q8_K)}})->UseRealTime();
BENCHMARK_MAIN();
