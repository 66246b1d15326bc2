// Scale searches of the k-quant reference quantizers. Byte-identical results need ggml's exact
// float expressions: products are written left to right as ggml groups them ((w * x) * l, not
// w * (x * l)), sums accumulate in element order, integers convert to float where ggml's C
// promotes them. Do not "simplify" the arithmetic.
#include "core/quants_k_fit.h"

#include <algorithm>
#include <cmath>

#include "core/quants_util.h"

namespace camelid::quants::detail {

namespace {

// The value of largest magnitude (first on ties) and that magnitude.
void signed_max(int n, const float* x, float& max, float& amax) {
  max = 0;
  amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
}

int clamp_level(int l, int lo, int hi) { return std::max(lo, std::min(hi, l)); }

// Weighted (w = x^2) sums of x * l and l * l for the levels that iscale gives.
struct LevelSums {
  float sumlx = 0, suml2 = 0;
};
LevelSums symmetric_sums(int n, int nmax, const float* x, float iscale) {
  LevelSums s;
  for (int i = 0; i < n; ++i) {
    const float l = float(clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    const float w = x[i] * x[i];
    s.sumlx += w * x[i] * l;
    s.suml2 += w * l * l;
  }
  return s;
}

void symmetric_levels(int n, int nmax, const float* x, float iscale, int8_t* L) {
  for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1));
}

}  // namespace

float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float max, amax;
  signed_max(n, x, max, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.f;
  }
  // The first candidate maps the largest-magnitude value to -nmax.
  float iscale = float(-nmax) / max;
  symmetric_levels(n, nmax, x, iscale, L);
  LevelSums s = symmetric_sums(n, nmax, x, iscale);
  float scale = s.suml2 != 0.0f ? s.sumlx / s.suml2 : 0.0f;
  float best = scale * s.sumlx;  // the error falls as sumlx^2 / suml2 rises
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    s = symmetric_sums(n, nmax, x, iscale);
    if (s.suml2 > 0 && s.sumlx * s.sumlx > best * s.suml2) {
      symmetric_levels(n, nmax, x, iscale, L);
      scale = s.sumlx / s.suml2;
      best = scale * s.sumlx;
    }
  }
  return scale;
}

float fit_symmetric_refined(int n, int nmax, const float* x, int8_t* L) {
  float max, amax;
  signed_max(n, x, max, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.f;
  }
  const float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  // Coordinate descent: move one level to its best value given the others' fit, keep the move
  // when the objective sumlx^2 / suml2 rises.
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * float(L[i]) * float(L[i]);
        const int new_l = clamp_level(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return sumlx / suml2;
}

float fit_affine(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* min_out,
                 float rmin, float rdelta, int nstep, bool use_abs) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;  // the offset only ever shifts down: levels start at -min
  if (max == min) {
    std::fill(L, L + n, uint8_t(0));
    *min_out = -min;
    return 0.f;
  }
  auto error_of = [&](float scale, float offset, const uint8_t* levels) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
      float diff = scale * float(levels[i]) + offset - x[i];
      diff = use_abs ? std::fabs(diff) : diff * diff;
      err += weights[i] * diff;
    }
    return err;
  };
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) L[i] = uint8_t(clamp_level(nearest_int(iscale * (x[i] - min)), 0, nmax));
  float best_err = error_of(scale, min, L);
  if (nstep < 1) {
    *min_out = -min;
    return scale;
  }
  uint8_t Laux[256];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_level(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = uint8_t(l);
      const float w = weights[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    // Weighted least squares for x ~ scale * l + offset with these levels.
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      const float err = error_of(this_scale, this_min, Laux);
      if (err < best_err) {
        std::copy(Laux, Laux + n, L);
        best_err = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *min_out = -min;
  return scale;
}

}  // namespace camelid::quants::detail
