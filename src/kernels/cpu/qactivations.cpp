// Activation rounding to Q8_0 / Q8_1 / Q8_K as ggml's reference quantizers do, and the per-block
// tables the quantized kernels read (see qmatmul.h).
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/qlayout.h"
#include "kernels/cpu/qmatmul.h"

namespace camelid::kernels {

void quantize_row_q8_0(const float* x, uint8_t* y, int K) {
  for (int b = 0; b < K / 32; ++b, x += 32, y += 34) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
    const float d = amax / 127, id = d != 0.f ? 1.f / d : 0.f;
    const uint16_t h = f32_to_f16(d);
    std::memcpy(y, &h, 2);
    for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
  }
}

void quantize_row_q8_1(const float* x, uint8_t* y, int K) {
  for (int b = 0; b < K / 32; ++b, x += 32, y += 36) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
    const float d = amax / 127, id = d != 0.f ? 1.f / d : 0.f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int8_t v = int8_t(std::round(x[j] * id));
      y[4 + j] = uint8_t(v);
      sum += v;
    }
    const uint16_t hd = f32_to_f16(d), hs = f32_to_f16(float(sum) * d);
    std::memcpy(y, &hd, 2);
    std::memcpy(y + 2, &hs, 2);
  }
}

// ggml's nearest_int: round half to even (the CPU's default rounding).
static int nearest_int(float v) { return int(std::nearbyint(v)); }

void quantize_row_q8_K(const float* x, uint8_t* y, int K) {
  for (int b = 0; b < K / 256; ++b, x += 256, y += 292) {
    float max = 0.f, amax = 0.f;  // the first element of largest magnitude, with its sign
    for (int j = 0; j < 256; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    int8_t* qs = reinterpret_cast<int8_t*>(y + 4);
    int16_t bsums[16] = {};
    float d = 0.f;
    if (amax == 0.f) {
      std::memset(qs, 0, 256);
    } else {
      const float iscale = -127.f / max;
      for (int j = 0; j < 256; ++j) {
        const int v = nearest_int(iscale * x[j]);
        qs[j] = int8_t(v < 127 ? v : 127);
        bsums[j / 16] = int16_t(bsums[j / 16] + qs[j]);
      }
      d = 1 / iscale;
    }
    std::memcpy(y, &d, 4);
    std::memcpy(y + 260, bsums, 32);
  }
}

void quantize_activations_scalar(DType type, const float* X, int T, int K, void* out) {
  const size_t rb = row_bytes(type, K);
  auto* o = static_cast<uint8_t*>(out);
  for (int t = 0; t < T; ++t) {
    const float* x = X + size_t(t) * K;
    uint8_t* y = o + size_t(t) * rb;
    switch (type) {
      case DType::Q8_0: quantize_row_q8_0(x, y, K); break;
      case DType::Q8_1: quantize_row_q8_1(x, y, K); break;
      case DType::Q8_K: quantize_row_q8_K(x, y, K); break;
      default: fail("quantize_activations: ", dtype_name(type), " is not an activation format");
    }
  }
}

namespace {

template <DType DT>
void prepare(const uint8_t* q, int T, int K, QuantizedActivations& a) {
  using L = q::Layout<DT>;
  const int nb = K / L::QB, ns = L::NS;
  const size_t n = size_t(T) * nb;
  a.dx_buf.resize(n);
  if constexpr (L::C != 0) a.bias_buf.resize(n * ns);
  if constexpr (L::kind == q::Kind::SuperMin) a.pairs_buf.resize(n * ns / 2);
  if constexpr (L::kind == q::Kind::Block32Min) a.sx_buf.resize(n);
  // Activation block layout: Q8_0 d(f16) qs[32]; Q8_1 d s qs[32]; Q8_K d(f32) qs[256] bsums.
  constexpr int xbytes = L::X == DType::Q8_0 ? 34 : L::X == DType::Q8_1 ? 36 : 292;
  constexpr int xoff = L::X == DType::Q8_0 ? 2 : 4;
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < nb; ++b) {
      const uint8_t* blk = q + (size_t(t) * nb + b) * xbytes;
      const size_t i = size_t(t) * nb + b;
      float dx;
      if constexpr (L::X == DType::Q8_K) std::memcpy(&dx, blk, 4);
      else dx = f16_to_f32(q::load_u16(blk));
      a.dx_buf[i] = dx;
      const int8_t* x = reinterpret_cast<const int8_t*>(blk + xoff);
      int32_t sums[16];
      for (int j = 0; j < ns; ++j) {
        int32_t s = 0;
        for (int k = 0; k < L::S; ++k) s += x[j * L::S + k];
        sums[j] = s;
      }
      if constexpr (L::C != 0)
        for (int j = 0; j < ns; ++j) a.bias_buf[i * ns + j] = -L::C * sums[j];
      if constexpr (L::kind == q::Kind::SuperMin)
        for (int j = 0; j < ns / 2; ++j)
          a.pairs_buf[i * ns / 2 + j] = int32_t(uint32_t(uint16_t(sums[2 * j])) | uint32_t(uint16_t(sums[2 * j + 1])) << 16);
      if constexpr (L::kind == q::Kind::Block32Min) a.sx_buf[i] = dx * float(sums[0]);
    }
  a.nb = nb;
  a.dx = a.dx_buf.data();
  a.bias = L::C != 0 ? a.bias_buf.data() : nullptr;
  a.pairs = L::kind == q::Kind::SuperMin ? a.pairs_buf.data() : nullptr;
  a.sx = L::kind == q::Kind::Block32Min ? a.sx_buf.data() : nullptr;
}

}  // namespace

void prepare_activations(DType wtype, const void* q, int T, int K, QuantizedActivations& a) {
  static std::atomic<uint64_t> next_id{1};
  a.id = next_id.fetch_add(1, std::memory_order_relaxed);
  a.wtype = wtype;
  a.type = dtype_info(wtype).vec_dot_type;
  a.T = T, a.K = K;
  a.q = static_cast<const uint8_t*>(q);
  a.row_bytes = row_bytes(a.type, K);
  const bool ok = q::with_layout(wtype, [&]<DType DT>() { prepare<DT>(a.q, T, K, a); });
  if (!ok) fail("quantized matmul: no integer kernel for ", dtype_name(wtype), " weights");
}

}  // namespace camelid::kernels
