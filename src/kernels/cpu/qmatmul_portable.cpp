// The quantized matmul in plain C++: the reference the SIMD kernels must match bit for bit. It
// performs exactly the sequence of qmatmul.h, one output element at a time.
#include <cmath>
#include <vector>

#include "kernels/cpu/qlayout.h"
#include "kernels/cpu/qmatmul.h"

namespace camelid::kernels::portable {
namespace {

template <DType DT>
void rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  using L = q::Layout<DT>;
  constexpr q::Kind kind = L::kind;
  constexpr int xoff = L::X == DType::Q8_0 ? 2 : 4, xbytes = L::X == DType::Q8_0 ? 34 : L::X == DType::Q8_1 ? 36 : 292;
  const int T = a.T, O = int(W.rows), nb = a.nb;
  std::vector<float> acc(T);
  uint8_t u[256];
  q::BlockScales s;
  for (int o = o0; o < o1; ++o) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const uint8_t* wrow = W.row(o);
    for (int b = 0; b < nb; ++b) {
      L::scales(wrow + size_t(b) * L::BB, s);
      L::values(wrow + size_t(b) * L::BB, u);
      for (int t = 0; t < T; ++t) {
        const size_t i = size_t(t) * nb + b;
        const int8_t* x = reinterpret_cast<const int8_t*>(a.q + size_t(t) * a.row_bytes + size_t(b) * xbytes + xoff);
        int32_t S = 0;
        for (int j = 0; j < L::NS; ++j) {
          int32_t sub = L::C != 0 ? a.bias[i * L::NS + j] : 0;
          for (int k = j * L::S; k < (j + 1) * L::S; ++k) sub += int32_t(u[k]) * x[k];
          S += kind == q::Kind::Block32 || kind == q::Kind::Block32Min ? sub : sub * s.sc[j];
        }
        const float dx = a.dx[i];
        float r = std::fma(float(S), s.d * dx, acc[t]);
        if constexpr (kind == q::Kind::Block32Min) r = std::fma(s.dmin, a.sx[i], r);
        if constexpr (kind == q::Kind::SuperMin) {
          int32_t M = 0;
          for (int j = 0; j < L::NS / 2; ++j) {
            const int32_t p = a.pairs[i * L::NS / 2 + j];
            M += s.m[2 * j] * int16_t(p & 0xffff) + s.m[2 * j + 1] * int16_t(uint32_t(p) >> 16);
          }
          r = std::fma(float(M), -(s.dmin * dx), r);
        }
        acc[t] = r;
      }
    }
    for (int t = 0; t < T; ++t) Y[size_t(t) * O + o] = acc[t];
  }
}

}  // namespace

void qmatmul_rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  q::with_layout(W.dtype, [&]<DType DT>() { rows<DT>(a, W, Y, o0, o1); });
}

}  // namespace camelid::kernels::portable
