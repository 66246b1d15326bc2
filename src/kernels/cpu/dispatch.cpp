#include <omp.h>

#include <cstdlib>

#include "core/error.h"
#include "kernels/kernels.h"

namespace camelid::kernels {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Portable: return "portable";
    case Isa::AVX2: return "avx2";
    case Isa::AVX512: return "avx512";
  }
  return "?";
}

Isa isa_from_name(const std::string& n) {
  if (n == "portable") return Isa::Portable;
  if (n == "avx2") return Isa::AVX2;
  if (n == "avx512") return Isa::AVX512;
  fail("unknown instruction set '", n, "' (expected portable, avx2 or avx512)");
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Portable: return true;
    case Isa::AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::AVX512:
      return isa_supported(Isa::AVX2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::AVX512)) return Isa::AVX512;
  if (isa_supported(Isa::AVX2)) return Isa::AVX2;
  return Isa::Portable;
}

namespace {
const KernelTable& table_for(Isa isa) {
  switch (isa) {
    case Isa::AVX512: return table_avx512();
    case Isa::AVX2: return table_avx2();
    default: return table_portable();
  }
}

Isa initial_isa() {
  const char* env = std::getenv("CAMELID_ISA");
  if (env && *env) {
    Isa isa = isa_from_name(env);
    if (!isa_supported(isa)) fail("CAMELID_ISA=", env, ": not supported by this CPU");
    return isa;
  }
  return best_isa();
}

Isa g_isa = initial_isa();
const KernelTable* g_table = &table_for(g_isa);
}  // namespace

Isa active_isa() { return g_isa; }

void set_isa(Isa isa) {
  if (!isa_supported(isa)) fail("instruction set ", isa_name(isa), " is not supported by this CPU");
  g_isa = isa;
  g_table = &table_for(isa);
}

void matmul(const float* X, int T, const Tensor& W, float* Y) {
  const int O = int(W.rows);
  const auto* t = g_table;
  // Split output rows into contiguous blocks per thread: each thread streams its own slice of W.
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    int chunk = (O + nt - 1) / nt;
    chunk = (chunk + 15) / 16 * 16;
    int o0 = id * chunk, o1 = std::min(O, o0 + chunk);
    if (o0 < o1) t->matmul_rows(X, T, W, Y, o0, o1);
  }
}

float dot(const float* a, const float* b, int n) { return g_table->dot(a, b, n); }
void axpy(float a, const float* x, float* y, int n) { g_table->axpy(a, x, y, n); }

}  // namespace camelid::kernels
