#pragma once
// The register tile of kernels::gemm ("outer-product" style, as BLIS-like GEMMs are): an MR x NR
// block of C held in MR x NRV vector registers, updated once per step p by NRV vector loads of a
// row of B and MR broadcasts from a packed panel of A (Ap[p * MR + r]). Included by each ISA file
// with its `V` traits (see matmul_simd.h) and compiled with that file's flags.
#include <cstddef>

namespace camelid::kernels::simd {

template <class V, int MR, int NRV>
void gemm_tile(const float* Ap, const float* B, size_t ldb, float* C, size_t ldc, int kc, int mr, bool load_c) {
  using vec = typename V::vec;
  constexpr int L = V::lanes;
  vec c[MR][NRV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NRV; ++j) c[r][j] = load_c && r < mr ? V::load(C + size_t(r) * ldc + j * L) : V::zero();
  for (int p = 0; p < kc; ++p) {
    vec b[NRV];
    for (int j = 0; j < NRV; ++j) b[j] = V::load(B + size_t(p) * ldb + j * L);
    for (int r = 0; r < MR; ++r) {
      const vec a = V::set1(Ap[p * MR + r]);
      for (int j = 0; j < NRV; ++j) c[r][j] = V::fma(a, b[j], c[r][j]);
    }
  }
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < NRV; ++j) V::store(C + size_t(r) * ldc + j * L, c[r][j]);
}

}  // namespace camelid::kernels::simd
