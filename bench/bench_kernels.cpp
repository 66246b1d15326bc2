// Matmul kernels on the bench-450m shapes: GFLOP/s (prefill) and GB/s of weights (decode).
#include <benchmark/benchmark.h>

#include <immintrin.h>
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

// Times Y = X W^T with the active kernels; GFLOP/s and GB/s of weights.
void time_matmul(benchmark::State& st, int O, int K, int T, DType dt) {
  Weights w(O, K, dt);
  std::vector<float> x(size_t(T) * K, 0.5f), y(size_t(T) * O);
  for (auto _ : st) {
    kernels::matmul(x.data(), T, w.t, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * O * K * T * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GB/s"] = benchmark::Counter(double(w.bytes.size()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_matmul(benchmark::State& st) {
  const int O = int(st.range(0)), K = int(st.range(1)), T = int(st.range(2));
  const DType dt = DType(st.range(3));
  const auto isa = kernels::Isa(st.range(4));
  if (!kernels::isa_supported(isa)) return st.SkipWithError("ISA not supported");
  kernels::set_isa(isa);
  kernels::set_bf16_dot(false);  // bf16 weights widened to f32 here; BM_matmul_bf16_dot has the other kernel
  time_matmul(st, O, K, T, dt);
  st.SetLabel(std::string(dtype_name(dt)) + " " + kernels::isa_name(isa) + " threads=" + std::to_string(omp_get_max_threads()));
}

// bf16 weights times activations rounded to bf16 (--bf16-dot), AVX512-BF16 only.
void BM_matmul_bf16_dot(benchmark::State& st) {
  const int O = int(st.range(0)), K = int(st.range(1)), T = int(st.range(2));
  kernels::set_isa(kernels::best_isa());
  if (!kernels::set_bf16_dot(true)) return st.SkipWithError("CPU lacks AVX512-BF16");
  time_matmul(st, O, K, T, DType::BF16);
  st.SetLabel("bf16 dot threads=" + std::to_string(omp_get_max_threads()));
}

// The compute ceiling the batched matmuls are measured against: independent AVX-512 FMAs (f32)
// or vdpbf16ps (bf16 pairs) on every thread, 12 chains to cover the latency.
template <bool Bf16>
__attribute__((target("avx512f,avx512bf16"))) float peak_loop(long n) {
  // Different starting values, so the compiler cannot merge the chains.
  __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f), a3 = _mm512_set1_ps(3.f),
         a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f), a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f),
         a8 = _mm512_set1_ps(8.f), a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
  const __m512 x = _mm512_set1_ps(0.5f), y = _mm512_set1_ps(0.25f);
  const __m512bh xb = (__m512bh)_mm512_set1_epi16(0x3f00), yb = (__m512bh)_mm512_set1_epi16(0x3e80);
  for (long i = 0; i < n; ++i) {
#define STEP(a) a = Bf16 ? _mm512_dpbf16_ps(a, xb, yb) : _mm512_fmadd_ps(a, x, y)
    STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5); STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
#undef STEP
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                 _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                                               _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}

template <bool Bf16>
void BM_peak(benchmark::State& st) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || (Bf16 && !__builtin_cpu_supports("avx512bf16")))
    return st.SkipWithError("CPU lacks the instructions");
  const long n = 1 << 22;
  for (auto _ : st) {
    float total = 0;
#pragma omp parallel reduction(+ : total)
    total += peak_loop<Bf16>(n);
    benchmark::DoNotOptimize(total);
  }
  st.counters["GFLOP/s"] = benchmark::Counter(double(n) * 12 * 16 * 2 * (Bf16 ? 2 : 1) * omp_get_max_threads() * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void shapes(benchmark::internal::Benchmark* b) {
  const int shapes[][2] = {{1536, 1536}, {512, 1536}, {4096, 1536}, {1536, 4096}, {32000, 1536}};
  for (int isa : {int(kernels::Isa::AVX512), int(kernels::Isa::AVX2)})
    for (int dt : {int(DType::F32), int(DType::F16), int(DType::BF16)})
      for (int T : {1, 16, 128})
        for (auto& s : shapes) b->Args({s[0], s[1], T, dt, isa});
}

// Read bandwidth ceiling: every thread streams its share of a 1 GB buffer with 512-bit loads
// into 8 independent sums (a STREAM-like read: more than the caches hold, nothing written).
__attribute__((target("avx512f"))) float read_sum(const float* p, size_t n) {
  __m512 s[8];
  for (auto& v : s) v = _mm512_setzero_ps();
  for (size_t i = 0; i + 128 <= n; i += 128)
    for (int j = 0; j < 8; ++j) s[j] = _mm512_add_ps(s[j], _mm512_loadu_ps(p + i + 16 * j));
  for (int j = 1; j < 8; ++j) s[0] = _mm512_add_ps(s[0], s[j]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s[0]);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}

void BM_memory_read(benchmark::State& st) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return st.SkipWithError("CPU lacks AVX-512");
  std::vector<float> buf(size_t(256) << 20, 1.f);
  for (auto _ : st) {
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const size_t nt = size_t(omp_get_num_threads()), chunk = buf.size() / nt / 128 * 128;
      total += read_sum(buf.data() + chunk * size_t(omp_get_thread_num()), chunk);
    }
    benchmark::DoNotOptimize(total);
  }
  st.counters["GB/s"] = benchmark::Counter(double(buf.size()) * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Training's products through kernels::gemm: args M, N, P, transposed A (dW = dYᵀ·X), ISA.
void BM_gemm(benchmark::State& st) {
  const int M = int(st.range(0)), N = int(st.range(1)), P = int(st.range(2));
  const bool at = st.range(3);
  const auto isa = kernels::Isa(st.range(4));
  if (!kernels::isa_supported(isa)) return st.SkipWithError("ISA not supported");
  kernels::set_isa(isa);
  std::vector<float> A(size_t(M) * P, 0.5f), B(size_t(P) * N, 0.25f), C(size_t(M) * N);
  for (auto _ : st)
    kernels::gemm(M, N, P, A.data(), at ? 1 : size_t(P), at ? size_t(M) : 1, B.data(), size_t(N), C.data(), size_t(N), at);
  kernels::set_isa(kernels::best_isa());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * P, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_gemm)->Apply([](benchmark::internal::Benchmark* b) {
  // A 25M model's dX (T=2048 rows through a 1408x512 weight) and dW (the same weight's gradient).
  for (int isa : {int(kernels::Isa::AVX512), int(kernels::Isa::AVX2)}) {
    b->Args({2048, 512, 1408, 0, isa});
    b->Args({1408, 512, 2048, 1, isa});
    b->Args({512, 1408, 2048, 1, isa});
  }
})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_bf16_dot)->Apply([](benchmark::internal::Benchmark* b) {
  const int shapes[][2] = {{1536, 1536}, {512, 1536}, {4096, 1536}, {1536, 4096}, {32000, 1536}};
  for (int T : {1, 16, 128})
    for (auto& s : shapes) b->Args({s[0], s[1], T});
})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_peak<false>)->Name("BM_peak_fma_f32")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_peak<true>)->Name("BM_peak_dpbf16")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_memory_read)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
