#include <cpuid.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/qlayout.h"
#include "kernels/cpu/qmatmul.h"
#include "kernels/cpu/qpanel.h"
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

namespace {
// clang has no __builtin_cpu_supports("f16c"); CPUID leaf 1 says it for both compilers.
bool has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
// VNNI by CPUID (leaf 7: AVX512_VNNI is ECX bit 11 of subleaf 0, AVX-VNNI EAX bit 4 of subleaf
// 1); the OS state they need is that of AVX-512 / AVX2, checked with the ISA.
bool has_vnni(Isa isa) {
  unsigned a, b, c, d;
  if (isa == Isa::AVX512) return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11));
  if (isa == Isa::AVX2) return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
  return false;
}
}  // namespace

bool isa_supported(Isa isa) {
  __builtin_cpu_init();  // needed when first called during static initialization
  switch (isa) {
    case Isa::Portable: return true;
    case Isa::AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::AVX512:
#ifdef CAMELID_NO_AVX512  // a sanitizer tree built without them (CMakeLists.txt)
      return false;
#endif
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
#ifndef CAMELID_NO_AVX512
    case Isa::AVX512: return table_avx512();
#endif
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

bool cpu_has_bf16_dot(const KernelTable& t) {
  __builtin_cpu_init();
  return t.matmul_rows_bf16 && __builtin_cpu_supports("avx512bf16");
}

// Chosen on first use, not during static initialization (CAMELID_ISA errors must reach main).
// `bf16_dot` caches "asked for and supported" so matmul does not query the CPU on every call.
// `vnni`: the quantized kernels use VNNI (on unless set_vnni(false) or CAMELID_VNNI=0).
struct Active {
  Isa isa;
  const KernelTable* table;
  bool want_bf16_dot = false, bf16_dot = false, exact = false;
  bool want_vnni = true, vnni = false;
  void set(Isa i, bool want) {
    isa = i, table = &table_for(i), want_bf16_dot = want;
    bf16_dot = want && !exact && cpu_has_bf16_dot(*table);
    vnni = want_vnni && table->qmatmul_rows_vnni && has_vnni(i);
  }
};
Active& active() {
  static Active a = [] {
    const char* env = std::getenv("CAMELID_BF16_DOT");
    const char* vnni = std::getenv("CAMELID_VNNI");
    Active a;
    a.want_vnni = !(vnni && std::string(vnni) == "0");
    a.set(initial_isa(), !(env && std::string(env) == "0"));  // on unless CAMELID_BF16_DOT=0
    return a;
  }();
  return a;
}
}  // namespace

Isa active_isa() { return active().isa; }

void set_isa(Isa isa) {
  if (!isa_supported(isa)) fail("instruction set ", isa_name(isa), " is not supported by this CPU");
  active().set(isa, active().want_bf16_dot);
}

void set_exact(bool on) {
  active().exact = on;
  active().set(active().isa, active().want_bf16_dot);
}
bool exact() { return active().exact; }

bool bf16_dot_supported() { return cpu_has_bf16_dot(*active().table); }
bool bf16_dot_active() { return active().bf16_dot; }
bool set_bf16_dot(bool on) {
  active().set(active().isa, on);
  return active().bf16_dot;
}

void widen(DType t, const void* src, float* dst, size_t n) { active().table->widen(t, src, dst, n); }

bool vnni_supported() { return active().table->qmatmul_rows_vnni && has_vnni(active().isa); }
bool vnni_active() { return active().vnni; }
bool set_vnni(bool on) {
  active().want_vnni = on;
  active().set(active().isa, active().want_bf16_dot);
  return active().vnni;
}

void matmul(const float* X, int T, const Tensor& W, float* Y) { matmul(X, T, {MatmulOut{W, Y}}); }

namespace {
void matmul_quantized_outs(const float* X, int T, const MatmulOut* const* o, size_t n_outs);
}

namespace {
// Rows [r0, r1) of W in row-major blocks: in place, or read back into buf when W is interleaved.
const uint8_t* row_major(const Tensor& W, int r0, int r1, std::vector<uint8_t>& buf) {
  if (!W.interleaved) return W.row(r0);
  buf.resize(size_t(r1 - r0) * W.row_nbytes());
  deinterleave_rows(W, r0, r1, buf.data());
  return buf.data();
}

// The exact path for quantized weights: rows dequantized (exactly, as ggml does) in chunks into
// f32 and multiplied by the f32 kernel. Every row sees the same operations whatever T and the
// split, so rows stay bit-identical across batches, as for float weights.
void matmul_rows_dequantized(const KernelTable& t, const float* X, int T, const Tensor& W, float* Y, int o0, int o1) {
  constexpr int kChunk = 64;
  static thread_local std::vector<float> w, y;
  const int K = int(W.cols), O = int(W.rows);
  static thread_local std::vector<uint8_t> rows;  // an interleaved W's chunk, read back
  w.resize(size_t(kChunk) * K), y.resize(size_t(kChunk) * T);
  for (int r0 = o0; r0 < o1; r0 += kChunk) {
    const int n = std::min(kChunk, o1 - r0);
    const uint8_t* src = row_major(W, r0, r0 + n, rows);
    for (int r = 0; r < n; ++r) to_f32(W.dtype, src + size_t(r) * W.row_nbytes(), &w[size_t(r) * K], size_t(K));
    const Tensor chunk{w.data(), DType::F32, n, K};
    t.matmul_rows(X, T, chunk, y.data(), 0, n);
    for (int i = 0; i < T; ++i) std::copy_n(&y[size_t(i) * n], n, Y + size_t(i) * O + r0);
  }
}
constexpr int kMaxOuts = 4;  // outputs of one matmul call (q/k/v, gate/up)
// Batch rows from which f32 and bf16-dot weights take the packed kernel: below, packing W costs
// more than it saves (measured with bench_kernels for f32: equal at 32-64 rows with AVX-512).
// CAMELID_PACKED=0 turns it off (for comparisons; same results).
constexpr int kPackedMinT = 64;
bool packed_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("CAMELID_PACKED");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

// Rows of up to kMaxOuts outputs in blocks of `granule` rows or more (48: whole register panels of
// every dot-product and quantized kernel; 96 also whole panels of the packed kernels), about 1/8
// of a thread's share each, numbered output after output for a dynamic schedule.
class BlockPlan {
 public:
  BlockPlan(const MatmulOut* const* o, size_t n, int nt, int granule = 48) : o_(o) {
    for (size_t i = 0; i < n; ++i) {
      const int O = int(o[i]->W.rows);
      block_[i] = std::max(granule, (O / (nt * 8) + granule - 1) / granule * granule);
      first_[i + 1] = first_[i] + (O + block_[i] - 1) / block_[i];
    }
    n_ = n;
  }
  int nblocks() const { return first_[n_]; }
  // Block b: output i, rows [r0, r1).
  void rows_of(int b, int& i, int& r0, int& r1) const {
    i = 0;
    while (b >= first_[i + 1]) ++i;
    r0 = (b - first_[i]) * block_[i];
    r1 = std::min(int(o_[i]->W.rows), r0 + block_[i]);
  }

 private:
  const MatmulOut* const* o_;
  size_t n_ = 0;
  int first_[kMaxOuts + 1] = {0}, block_[kMaxOuts] = {};
};
}  // namespace

void matmul(const float* X, int T, std::initializer_list<MatmulOut> outs) {
  const KernelTable* t = active().table;
  // Rows go out in blocks of ~1/8 of a thread's share, handed out dynamically: a thread slowed by
  // a busy core or memory contention just takes fewer blocks. Which thread computes a row never
  // changes its value.
  const int nt = omp_get_max_threads();
  if (outs.size() > kMaxOuts) fail("kernels::matmul: at most ", kMaxOuts, " outputs per call");
  // Quantized weights take the integer kernels (the default) unless --exact asks for f32
  // activations against dequantized weights; the rest share one parallel region below.
  const MatmulOut* o[kMaxOuts];
  const MatmulOut* fast[kMaxOuts];
  size_t n_outs = 0, n_fast = 0;
  for (const MatmulOut& m : outs) {
    if (is_quantized(m.W.dtype) && !active().exact && matmul_quantized_supported(m.W.dtype)) fast[n_fast++] = &m;
    else o[n_outs++] = &m;
  }
  if (n_fast) matmul_quantized_outs(X, T, fast, n_fast);  // one rounding of X, one parallel region
  if (n_outs == 0) return;
  const int K = int(o[0]->W.cols);
  // bf16 dot: X is rounded once here, not once per block.
  const uint16_t* xb = nullptr;
  auto bf16_dot = [&](const MatmulOut* m) { return active().bf16_dot && m->W.dtype == DType::BF16; };
  if (std::any_of(o, o + n_outs, bf16_dot)) {
    static thread_local std::vector<uint16_t> buf;
    buf.resize(size_t(T) * K);
    t->round_to_bf16(X, T, K, buf.data());
    xb = buf.data();
  }
  // Batches against f32 weights, and bf16 weights in the bf16-dot kernel: X packed once here for
  // the packed kernel (same bits, see matmul_packed_simd.h). f16 weights, and bf16 widened to
  // f32, keep the dot-product kernel, whose half-size W tiles stay in L1 (there the packed kernel
  // measured 5-10% slower).
  const float* xp = nullptr;   // f32 X for f32 weights
  const float* xpb = nullptr;  // bf16 X for bf16-dot weights
  if (T >= kPackedMinT && t->matmul_rows_packed && packed_enabled()) {
    static thread_local std::vector<float> buf, buf_bf16;
    if (std::any_of(o, o + n_outs, [](const MatmulOut* m) { return m->W.dtype == DType::F32; })) {
      buf.resize(t->packed_x_floats(DType::F32, T, K));
      t->pack_x(DType::F32, X, T, K, buf.data());
      xp = buf.data();
    }
    if (xb) {
      buf_bf16.resize(t->packed_x_floats(DType::BF16, T, K));
      t->pack_x(DType::BF16, xb, T, K, buf_bf16.data());
      xpb = buf_bf16.data();
    }
  }
  const BlockPlan plan(o, n_outs, nt, xp || xpb ? 96 : 48);
  const int nblocks = plan.nblocks();
#pragma omp parallel for schedule(dynamic, 1) if (nblocks > 1)
  for (int b = 0; b < nblocks; ++b) {
    int i, r0, r1;
    plan.rows_of(b, i, r0, r1);
    if (is_quantized(o[i]->W.dtype)) matmul_rows_dequantized(*t, X, T, o[i]->W, o[i]->Y, r0, r1);
    else if (bf16_dot(o[i]) && xpb) t->matmul_rows_packed(xpb, T, o[i]->W, o[i]->Y, r0, r1);
    else if (bf16_dot(o[i])) t->matmul_rows_bf16(xb, T, o[i]->W, o[i]->Y, r0, r1);
    else if (xp && o[i]->W.dtype == DType::F32) t->matmul_rows_packed(xp, T, o[i]->W, o[i]->Y, r0, r1);
    else t->matmul_rows(X, T, o[i]->W, o[i]->Y, r0, r1);
  }
}

// Only without VNNI: on an Intel Xeon with AVX512-VNNI and AVX-VNNI (2 threads, bench-450m) the
// row-major kernels' vpdpbusd beat the panel kernel's vpmaddubsw, AVX2 or AVX-512, in prefill
// (Q4_0 322 against 223 tok/s with AVX2) and decode (Q8_0 42.6 against 39.2).
bool interleave_supported(const Tensor& W) {
  return !W.interleaved && W.rows % panel::kRows == 0 && panel::layout(W.dtype).n > 0 && active().table->qgemv_panel &&
         !active().vnni;
}

bool matmul_quantized_supported(DType w) {
  return q::with_layout(w, []<DType>() {});
}

void quantize_activations(DType type, const float* X, int T, int K, void* out) {
  if (type != DType::Q8_0 && type != DType::Q8_1 && type != DType::Q8_K)
    fail("quantize_activations: ", dtype_name(type), " is not an activation format (q8_0, q8_1, q8_k)");
  if (!row_fits(type, K)) fail("quantize_activations: ", K, " values per row do not fill ", dtype_name(type), " blocks");
  active().table->quantize_activations(type, X, T, K, out);
}

void matmul_quantized(const float* X, int T, const Tensor& W, float* Y) { matmul_quantized(X, T, {MatmulOut{W, Y}}); }

void matmul_quantized(const float* X, int T, std::initializer_list<MatmulOut> outs) {
  if (outs.size() > kMaxOuts) fail("kernels::matmul_quantized: at most ", kMaxOuts, " outputs per call");
  const MatmulOut* o[kMaxOuts];
  for (size_t i = 0; i < outs.size(); ++i) o[i] = outs.begin() + i;
  matmul_quantized_outs(X, T, o, outs.size());
}

namespace {
// The quantized outputs o[0 .. n_outs) of one X (matmul_quantized and matmul's quantized weights).
void matmul_quantized_outs(const float* X, int T, const MatmulOut* const* o, size_t n_outs) {
  if (n_outs > size_t(kMaxOuts)) fail("kernels::matmul_quantized: at most ", kMaxOuts, " outputs per call");
  for (size_t i = 0; i < n_outs; ++i) {
    const MatmulOut& m = *o[i];
    if (!matmul_quantized_supported(m.W.dtype)) fail("matmul_quantized: no integer kernel for ", dtype_name(m.W.dtype), " weights");
    if (m.W.cols != o[0]->W.cols) fail("matmul_quantized: outputs of one call share X, so their weights need as many columns");
  }
  if (T <= 0 || n_outs == 0) return;
  const Active& a = active();
  const int K = int(o[0]->W.cols);
  // X is rounded once per activation format and its block tables built once per weight type, by
  // the calling thread, then shared read-only by the workers.
  static thread_local std::vector<uint8_t> xq[kMaxOuts];
  static thread_local QuantizedActivations acts[kMaxOuts];
  const QuantizedActivations* x[kMaxOuts];
  for (size_t i = 0; i < n_outs; ++i) {
    size_t j = 0;
    while (j < i && o[j]->W.dtype != o[i]->W.dtype) ++j;
    if (j < i) {  // same weight type as an earlier output: same tables
      x[i] = x[j];
      continue;
    }
    const DType type = dtype_info(o[i]->W.dtype).vec_dot_type;
    j = 0;
    while (j < i && dtype_info(o[j]->W.dtype).vec_dot_type != type) ++j;
    const uint8_t* q = j < i ? x[j]->q : nullptr;  // already rounded to this format
    if (!q) {
      xq[i].resize(row_bytes(type, K) * size_t(T));
      a.table->quantize_activations(type, X, T, K, xq[i].data());
      q = xq[i].data();
    }
    prepare_activations(o[i]->W.dtype, q, T, K, acts[i]);
    x[i] = &acts[i];
  }
  const auto rows = a.vnni ? a.table->qmatmul_rows_vnni : a.table->qmatmul_rows;
  // Interleaved weights where the instruction set has no panel kernel, or batches of a type whose
  // panel kernel is slower there: the block's rows read back into row-major blocks, then the
  // usual kernel into a scratch Y (the copy stays in cache).
  auto deinterleaved = [&](const QuantizedActivations& x, const Tensor& W, float* Y, int r0, int r1) {
    static thread_local std::vector<uint8_t> wbuf;
    static thread_local std::vector<float> ybuf;
    const int n = r1 - r0;
    ybuf.resize(size_t(n) * T);
    rows(x, Tensor{row_major(W, r0, r1, wbuf), W.dtype, n, W.cols}, ybuf.data(), 0, n);
    for (int t = 0; t < T; ++t) std::copy_n(&ybuf[size_t(t) * n], n, Y + size_t(t) * W.rows + r0);
  };
  // Blocks handed out as in matmul.
  const int nt = omp_get_max_threads();
  const BlockPlan plan(o, n_outs, nt);
  const int nblocks = plan.nblocks();
#pragma omp parallel for schedule(dynamic, 1) if (nblocks > 1)
  for (int b = 0; b < nblocks; ++b) {
    int i, r0, r1;
    plan.rows_of(b, i, r0, r1);
    const Tensor& W = o[i]->W;
    if (!W.interleaved) rows(*x[i], W, o[i]->Y, r0, r1);
    else if (a.table->qgemv_panel && (T <= 4 || panel::for_batches(W.dtype))) a.table->qgemv_panel(*x[i], W, o[i]->Y, r0, r1);
    else deinterleaved(*x[i], W, o[i]->Y, r0, r1);
  }
}
}  // namespace

void attend(const float* q, const float* k, const float* v, size_t ld, int n, int hd, float scale,
            float* scores, float* out) {
  const AttendRow row{q, out, n};
  attend_rows(&row, 1, k, v, ld, hd, scale, scores);
}

void attend_rows(const AttendRow* rows, int nrows, const float* k, const float* v, size_t ld, int hd, float scale,
                 float* scores) {
  const KVRows kr{&k, 30, ld}, vr{&v, 30, ld};
  active().table->attend_rows(rows, nrows, kr, vr, hd, scale, scores);
}

void attend_rows_paged(const AttendRow* rows, int nrows, const KVRows& k, const KVRows& v, int hd, float scale,
                       float* scores) {
  active().table->attend_rows(rows, nrows, k, v, hd, scale, scores);
}

// Blocks of kKc steps of p: A's block is packed into MR-row panels (both layouts of A become one
// contiguous stream), then each thread takes (B panel of NR columns, run of A panels) pairs: the
// B panel (kKc x NR) stays in L1/L2 while the A panels stream past it. Columns past the last
// whole panel go through zero-padded copies.
void gemm(int M, int N, int P, const float* A, size_t a_row, size_t a_col, const float* B, size_t ldb, float* C,
          size_t ldc, bool accumulate) {
  constexpr int kKc = 256, kPanelsPerTask = 16;
  const KernelTable& t = *active().table;
  const int MR = t.gemm_mr, NR = t.gemm_nr;
  if (M <= 0 || N <= 0) return;
  if (P <= 0) {
    if (!accumulate)
      for (int m = 0; m < M; ++m) std::fill_n(C + size_t(m) * ldc, N, 0.f);
    return;
  }
  const int m_panels = (M + MR - 1) / MR, n_panels = (N + NR - 1) / NR;
  const int m_tasks = (m_panels + kPanelsPerTask - 1) / kPanelsPerTask;
  const bool parallel = !omp_in_parallel() && size_t(M) * N * P > (size_t(1) << 18);
  static thread_local std::vector<float> packed;
  std::vector<float>& Ap = packed;  // the calling thread's buffer, shared by the team below
  Ap.resize(size_t(m_panels) * MR * kKc);
  for (int p0 = 0; p0 < P; p0 += kKc) {
    const int kc = std::min(kKc, P - p0);
    const bool load_c = accumulate || p0 > 0;
#pragma omp parallel for if (parallel)
    for (int i = 0; i < m_panels; ++i) {
      float* dst = &Ap[size_t(i) * MR * kc];
      const int m0 = i * MR, mr = std::min(MR, M - m0);
      if (a_row == 1) {  // Aᵀ stored: each step's MR values are contiguous
        for (int p = 0; p < kc; ++p) {
          const float* src = A + size_t(p0 + p) * a_col + m0;
          std::copy_n(src, mr, dst + p * MR);
          std::fill(dst + p * MR + mr, dst + (p + 1) * MR, 0.f);
        }
      } else {  // rows of A: read each row's run of kc values, scatter them MR apart
        for (int r = 0; r < MR; ++r) {
          if (r >= mr) {
            for (int p = 0; p < kc; ++p) dst[p * MR + r] = 0.f;
            continue;
          }
          const float* src = A + size_t(m0 + r) * a_row + size_t(p0) * a_col;
          for (int p = 0; p < kc; ++p) dst[p * MR + r] = src[size_t(p) * a_col];
        }
      }
    }
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (parallel)
    for (int j = 0; j < n_panels; ++j)
      for (int mt = 0; mt < m_tasks; ++mt) {
        const int n0 = j * NR, nr = std::min(NR, N - n0);
        const float* b = B + size_t(p0) * ldb + n0;
        size_t lb = ldb;
        std::vector<float> bt, ct;
        if (nr < NR) {  // zero-padded copy of the last columns of B
          bt.assign(size_t(kc) * NR, 0.f), ct.assign(size_t(MR) * NR, 0.f);
          for (int p = 0; p < kc; ++p) std::copy_n(b + size_t(p) * ldb, nr, &bt[size_t(p) * NR]);
          b = bt.data(), lb = size_t(NR);
        }
        for (int i = mt * kPanelsPerTask; i < std::min(m_panels, (mt + 1) * kPanelsPerTask); ++i) {
          const int m0 = i * MR, mr = std::min(MR, M - m0);
          float* c = C + size_t(m0) * ldc + n0;
          if (nr == NR) {
            t.gemm_tile(&Ap[size_t(i) * MR * kc], b, lb, c, ldc, kc, mr, load_c);
            continue;
          }
          for (int r = 0; r < mr; ++r) std::copy_n(c + size_t(r) * ldc, nr, &ct[size_t(r) * NR]);
          t.gemm_tile(&Ap[size_t(i) * MR * kc], b, lb, ct.data(), size_t(NR), kc, mr, load_c);
          for (int r = 0; r < mr; ++r) std::copy_n(&ct[size_t(r) * NR], nr, c + size_t(r) * ldc);
        }
      }
  }
}

}  // namespace camelid::kernels
