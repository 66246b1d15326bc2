#pragma once
// The per-group scale searches of ggml's k-quant reference quantizers (make_qx_quants,
// make_q3_quants, make_qkx2_quants), restricted to the settings the reference quantizers use.
// Each rounds the n values of x to integer levels L and returns the group's float scale; the
// super-block quantizers in quants_k.cpp then round these scales to 4, 6 or 8 bits.
#include <cstdint>

namespace camelid::quants::detail {

// Symmetric levels l in [-nmax, nmax) with x ~ scale * l, fitted by weighted least squares
// (weights x^2) over 19 candidate scales around nmax / max. L[i] = l + nmax. Q6_K's fit
// (ggml's make_qx_quants with rmse_type 1 and no importance weights).
float fit_symmetric(int n, int nmax, const float* x, int8_t* L);

// Symmetric levels l in [-nmax, nmax), refined one value at a time (up to 5 passes) while the
// weighted (x^2) error falls. L[i] = l + nmax. Q3_K's fit (make_q3_quants with do_rmse).
float fit_symmetric_refined(int n, int nmax, const float* x, int8_t* L);

// Affine levels l in [0, nmax] with x ~ scale * l - min (min >= 0 is written to *min_out),
// searching nstep + 1 candidate scales (nmax + rmin + rdelta * k) / range and solving for scale
// and min by weighted least squares; error measured as weighted |diff| (use_abs) or diff^2.
// Q2_K / Q4_K / Q5_K's fit (make_qkx2_quants).
float fit_affine(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* min_out,
                 float rmin, float rdelta, int nstep, bool use_abs);

}  // namespace camelid::quants::detail
