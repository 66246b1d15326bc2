#pragma once
// CPU compute kernels. The model calls these; an implementation per instruction set lives in
// kernels/cpu/*_{portable,avx2,avx512}.cpp and one is chosen at run time (best the CPU supports,
// or forced with set_isa / CAMELID_ISA=portable|avx2|avx512 for tests and comparisons).
#include <initializer_list>
#include <string>

#include "core/tensor.h"

namespace camelid::kernels {

enum class Isa { Portable, AVX2, AVX512 };

const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);  // throws Error on an unknown name
bool isa_supported(Isa isa);                 // by this CPU (and this build)
Isa best_isa();
Isa active_isa();
void set_isa(Isa isa);  // throws Error if the CPU cannot run it

// Y[t, o] = sum_i X[t, i] * W[o, i] for t < T, o < W.rows; X is [T, W.cols] f32 row-major,
// Y is [T, W.rows]. W may be f32, f16 or bf16; accumulation is f32. Multi-threaded (OpenMP).
void matmul(const float* X, int T, const Tensor& W, float* Y);

// Several matmuls of the same X (Q/K/V, gate/up) in one parallel region: one barrier instead of
// one per matrix, and threads flow from one matrix into the next while memory stays busy.
struct MatmulOut {
  const Tensor& W;
  float* Y;
};
void matmul(const float* X, int T, std::initializer_list<MatmulOut> outs);

// bf16 weights multiplied by activations rounded to bf16 (AVX512-BF16 vdpbf16ps), accumulating in
// f32: twice the multiply rate where compute is the bound (batched decode, prefill), at bf16
// precision for the activations of those matmuls, as llama.cpp and GPU engines run bf16 models.
// The fast path's default for bf16 weights, as 8-bit activations are for quantized ones (judged
// like them against llama.cpp's own deviation); exact mode and CAMELID_BF16_DOT=0 turn it off.
// It runs only with the AVX-512 kernels on a CPU with AVX512-BF16; elsewhere bf16 weights are
// widened to f32. Rows stay bit-identical whatever the batch.
// Quantized weights: exact (f32 activations against exactly dequantized weights, as ggml's
// reference computes) or fast (activations rounded per block to 8 bits, integer dot products;
// the default where a fast kernel exists for the type). Exact also turns bf16-dot off.
void set_exact(bool on);
bool exact();

bool bf16_dot_supported();   // by this CPU with the active instruction set
bool set_bf16_dot(bool on);  // returns whether it is in use now
bool bf16_dot_active();

// Block-quantized weights (Q4_0, Q8_0, Q4_K, Q6_K, ...: see matmul_quantized_supported) times
// activations rounded to the weight type's activation format (dtype_info(W.dtype).vec_dot_type:
// Q8_0, Q8_1 or Q8_K), in integer dot products with the block scales applied in f32, as
// llama.cpp computes them. X is rounded once per call; rows are split across threads (OpenMP).
// Every output element follows one fixed sequence of operations (kernels/cpu/qmatmul.h), so
// rows are bit-identical whatever T, the thread count and the instruction set.
bool matmul_quantized_supported(DType w);
void matmul_quantized(const float* X, int T, const Tensor& W, float* Y);
// Several quantized matmuls of the same X (Q/K/V, gate/up; weight types may differ): X rounded
// once per activation format, one parallel region.
void matmul_quantized(const float* X, int T, std::initializer_list<MatmulOut> outs);
// Rounds T rows of K values (K a multiple of the block) to `type` (Q8_0, Q8_1 or Q8_K) blocks,
// byte for byte as ggml's quantize_row_q8_0_ref / q8_1_ref / q8_K_ref.
void quantize_activations(DType type, const float* X, int T, int K, void* out);
// Interleaved quantized weights (kernels/cpu/qpanel.h): the same bytes regrouped in panels of 8
// rows, which the AVX2 kernel streams as one sequence with no per-row unpacking or reduction
// (4 activation rows per pass over a panel). Same results as row-major weights, bit for bit;
// other instruction sets and --exact read them back into row-major blocks, a few rows at a time.
// interleave_supported: W is row-major, its rows fill panels, its type has a panel layout and the
// active kernels use it (AVX2 without VNNI: where vpdpbusd exists, the row-major kernels measured
// faster).
bool interleave_supported(const Tensor& W);
// W row-major with rows a multiple of 8; dst: W.nbytes() bytes. The result views dst.
Tensor interleave(const Tensor& W, void* dst);
// Rows [r0, r1) of an interleaved W (whole panels) in row-major blocks at dst.
void deinterleave_rows(const Tensor& W, int64_t r0, int64_t r1, void* dst);
// VNNI dot products (AVX512-VNNI with the AVX-512 kernels, AVX-VNNI with the AVX2 ones) are used
// where the CPU has them; off, the same kernels use vpmaddubsw. Same results either way.
bool vnni_supported();  // by this CPU with the active instruction set
bool set_vnni(bool on);  // returns whether it is in use now
bool vnni_active();

// One query head's attention over n cached positions (single-threaded):
//   out[hd] = sum_p softmax_p(scale * q . k_p) v_p, with k_p = k + p*ld and v_p = v + p*ld.
// scores: n floats of scratch. A row's result depends only on its own inputs (batch-invariant).
void attend(const float* q, const float* k, const float* v, size_t ld, int n, int hd, float scale,
            float* scores, float* out);

// Several query rows against the same keys and values (single-threaded): row r attends over
// positions [0, rows[r].n) with its query `q` (hd floats) into `out` (hd floats). Keys and values
// are read from memory once per call rather than once per row; each row gets exactly the bits
// attend() gives it alone. scores: nrows x max n floats of scratch.
struct AttendRow {
  const float* q;
  float* out;
  int n;
};
void attend_rows(const AttendRow* rows, int nrows, const float* k, const float* v, size_t ld, int hd, float scale,
                 float* scores);
// Keys or values of one head in blocks of 2^shift positions, each block's rows `ld` floats apart
// (a paged KV cache read in place); one block of 2^30 positions is a contiguous array.
struct KVRows {
  const float* const* blocks;
  int shift;
  size_t ld;
  const float* at(int p) const { return blocks[p >> shift] + size_t(p & ((1 << shift) - 1)) * ld; }
};
// attend_rows over keys and values in blocks: the same bits as over the same values contiguous.
void attend_rows_paged(const AttendRow* rows, int nrows, const KVRows& k, const KVRows& v, int hd, float scale,
                       float* scores);

// C[M, N] = (or += with accumulate) A · B in f32, where A(m, p) = A[m * a_row + p * a_col] (a
// row-major [M, P] matrix, or the transpose of a [P, M] one) and B is [P, N] row-major with rows
// ldb apart; C rows are ldc apart. Training's products (dX = dY·W, dW += dYᵀ·X, attention) go
// through it. Multi-threaded (OpenMP) unless called inside a parallel region. Each C element sums
// over p in order, in blocks, the same way whatever the thread count.
void gemm(int M, int N, int P, const float* A, size_t a_row, size_t a_col, const float* B, size_t ldb, float* C,
          size_t ldc, bool accumulate);

// n values of type t (any dtype with a to_f32: f16 and bf16 with the ISA's widening instructions)
// as f32, exactly as to_f32 gives them. The f16/bf16 KV cache is read through it.
void widen(DType t, const void* src, float* dst, size_t n);

struct QuantizedActivations;  // kernels/cpu/qmatmul.h

// The per-ISA entry points behind the dispatch.
struct KernelTable {
  // Rows [o0, o1) of the output only; dispatch splits rows across threads.
  void (*matmul_rows)(const float* X, int T, const Tensor& W, float* Y, int o0, int o1);
  void (*attend_rows)(const AttendRow* rows, int nrows, const KVRows& k, const KVRows& v, int hd, float scale,
                      float* scores);
  // bf16 dot (null where the ISA has none): X already rounded to bf16, W bf16.
  void (*matmul_rows_bf16)(const uint16_t* X, int T, const Tensor& W, float* Y, int o0, int o1);
  void (*round_to_bf16)(const float* X, int T, int K, uint16_t* out);
  // Quantized weights: activation rounding, then rows [o0, o1) of Y; the VNNI variant is null
  // where the ISA has none.
  void (*quantize_activations)(DType type, const float* X, int T, int K, void* out);
  void (*qmatmul_rows)(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
  void (*qmatmul_rows_vnni)(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
  // gemm's register tile: C[mr (<= gemm_mr), gemm_nr] (+)= Ap · B over kc steps, Ap packed as
  // Ap[p * gemm_mr + r] (see gemm_simd.h).
  void (*gemm_tile)(const float* Ap, const float* B, size_t ldb, float* C, size_t ldc, int kc, int mr, bool load_c);
  int gemm_mr, gemm_nr;
  void (*widen)(DType t, const void* src, float* dst, size_t n);
  // Batched matmul on packed panels, bit-identical to matmul_rows for f32 weights and to
  // matmul_rows_bf16 for bf16 ones (null where the ISA has none; see matmul_packed_simd.h): X
  // (f32, or rounded to bf16 for the bf16 weights) packed once per call into
  // packed_x_floats(type of X, T, K) floats, then rows [o0, o1) of Y.
  size_t (*packed_x_floats)(DType x, int T, int K);
  void (*pack_x)(DType x, const void* X, int T, int K, float* Xp);
  void (*matmul_rows_packed)(const float* Xp, int T, const Tensor& W, float* Y, int o0, int o1);
  // Interleaved quantized weights (qpanel.h): rows [o0, o1) (whole panels) of Y; null where the
  // ISA has none (then the dispatch reads the rows back).
  void (*qgemv_panel)(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
};
const KernelTable& table_portable();
const KernelTable& table_avx2();
const KernelTable& table_avx512();

}  // namespace camelid::kernels
