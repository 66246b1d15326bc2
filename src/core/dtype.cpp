#include "core/dtype.h"

#include "core/error.h"

namespace camelid {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
  }
  return "?";
}

DType dtype_from_name(const std::string& n) {
  if (n == "f32" || n == "F32" || n == "float32") return DType::F32;
  if (n == "f16" || n == "F16" || n == "float16") return DType::F16;
  if (n == "bf16" || n == "BF16" || n == "bfloat16") return DType::BF16;
  fail("unsupported dtype '", n, "' (expected f32, f16 or bf16)");
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  uint32_t absu = u & 0x7fffffff;
  if (absu > 0x7f800000) return uint16_t(sign | 0x7e00);          // NaN
  if (absu >= 0x477ff000) return uint16_t(sign | 0x7c00);         // overflow -> inf
  if (absu < 0x38800000) {                                        // subnormal or zero
    if (absu < 0x33000000) return uint16_t(sign);
    uint32_t mant = (absu & 0x7fffff) | 0x800000;
    int shift = 126 - int(absu >> 23);  // 14..24
    uint32_t half = 1u << (shift - 1);
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t r = mant >> shift;
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = absu - 0x38000000;  // rebias exponent 127 -> 15
  r += 0xfff + ((r >> 13) & 1);
  return uint16_t(sign | (r >> 13));
}

void to_f32(DType t, const void* src, float* dst, size_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * 4); return;
    case DType::BF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::F16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
  }
}

namespace {

// An element is NaN or Inf when its exponent bits are all ones. Counted in lanes as wide as the
// element (a block's count fits), so the loop vectorizes; memcpy keeps unaligned data defined.
template <class U, U kExp>
size_t count_exp_all_ones(const void* src, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  size_t count = 0;
  constexpr size_t kBlock = 4096;
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = n - i < kBlock ? n - i : kBlock;
    U acc = 0;
    for (size_t j = 0; j < m; ++j) {
      U x;
      std::memcpy(&x, p + (i + j) * sizeof(U), sizeof(U));
      acc = U(acc + U((x & kExp) == kExp));
    }
    count += acc;
  }
  return count;
}

}  // namespace

size_t count_nonfinite(DType t, const void* src, size_t n) {
  switch (t) {
    case DType::F32: return count_exp_all_ones<uint32_t, 0x7f800000u>(src, n);
    case DType::BF16: return count_exp_all_ones<uint16_t, uint16_t(0x7f80)>(src, n);
    case DType::F16: return count_exp_all_ones<uint16_t, uint16_t(0x7c00)>(src, n);
  }
  return 0;
}

}  // namespace camelid
