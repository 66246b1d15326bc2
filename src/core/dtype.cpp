#include "core/dtype.h"

#include <iterator>

#include "core/error.h"
#include "core/quants.h"

namespace camelid {

namespace {

void f32_to_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void f32_from_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void f16_to_f32_row(const void* src, float* dst, int64_t n) {
  auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void f16_from_f32_row(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
void bf16_to_f32_row(const void* src, float* dst, int64_t n) {
  auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void bf16_from_f32_row(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}

using namespace quants;
using D = DType;
// type, name, ggml id, block, bytes, quantized, f16 scales at, to_f32, from_f32, vec_dot_type
constexpr DTypeInfo kInfo[] = {
    {D::F32, "f32", 0, 1, 4, false, 0, {0, 0}, f32_to_f32, f32_from_f32, D::F32},
    {D::F16, "f16", 1, 1, 2, false, 0, {0, 0}, f16_to_f32_row, f16_from_f32_row, D::F16},
    {D::BF16, "bf16", 30, 1, 2, false, 0, {0, 0}, bf16_to_f32_row, bf16_from_f32_row, D::BF16},
    {D::Q4_0, "q4_0", 2, 32, 18, true, 1, {0, 0}, dequantize_q4_0, quantize_q4_0, D::Q8_0},
    {D::Q4_1, "q4_1", 3, 32, 20, true, 2, {0, 2}, dequantize_q4_1, quantize_q4_1, D::Q8_1},
    {D::Q5_0, "q5_0", 6, 32, 22, true, 1, {0, 0}, dequantize_q5_0, quantize_q5_0, D::Q8_0},
    {D::Q5_1, "q5_1", 7, 32, 24, true, 2, {0, 2}, dequantize_q5_1, quantize_q5_1, D::Q8_1},
    {D::Q8_0, "q8_0", 8, 32, 34, true, 1, {0, 0}, dequantize_q8_0, quantize_q8_0, D::Q8_0},
    {D::Q8_1, "q8_1", 9, 32, 36, true, 2, {0, 2}, dequantize_q8_1, quantize_q8_1, D::Q8_1},
    {D::Q2_K, "q2_k", 10, 256, 84, true, 2, {80, 82}, dequantize_q2_k, quantize_q2_k, D::Q8_K},
    {D::Q3_K, "q3_k", 11, 256, 110, true, 1, {108, 0}, dequantize_q3_k, quantize_q3_k, D::Q8_K},
    {D::Q4_K, "q4_k", 12, 256, 144, true, 2, {0, 2}, dequantize_q4_k, quantize_q4_k, D::Q8_K},
    {D::Q5_K, "q5_k", 13, 256, 176, true, 2, {0, 2}, dequantize_q5_k, quantize_q5_k, D::Q8_K},
    {D::Q6_K, "q6_k", 14, 256, 210, true, 1, {208, 0}, dequantize_q6_k, quantize_q6_k, D::Q8_K},
    {D::Q8_K, "q8_k", 15, 256, 292, true, 0, {0, 0}, dequantize_q8_k, quantize_q8_k, D::Q8_K},
    {D::IQ4_NL, "iq4_nl", 20, 32, 18, true, 1, {0, 0}, dequantize_iq4_nl, quantize_iq4_nl, D::Q8_0},
    {D::IQ4_XS, "iq4_xs", 23, 256, 136, true, 1, {0, 0}, dequantize_iq4_xs, quantize_iq4_xs, D::Q8_K},
};
static_assert(std::size(kInfo) == size_t(DType::Count));

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < std::size(kInfo); ++i)
    if (size_t(kInfo[i].type) != i) return false;
  return true;
}
static_assert(table_in_enum_order());

// ggml's type names, for messages about types camelid does not run.
constexpr const char* kGgmlNames[] = {
    "f32", "f16", "q4_0", "q4_1", "type 4", "type 5", "q5_0", "q5_1", "q8_0", "q8_1", "q2_k", "q3_k",
    "q4_k", "q5_k", "q6_k", "q8_k", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
    "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m", "bf16", "type 31", "type 32",
    "type 33", "tq1_0", "tq2_0"};

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  const size_t i = size_t(t);
  return kInfo[i < std::size(kInfo) ? i : 0];
}

DType dtype_from_name(const std::string& n) {
  std::string low;
  for (char ch : n) low += char(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  if (low == "float32") return DType::F32;
  if (low == "float16") return DType::F16;
  if (low == "bfloat16") return DType::BF16;
  std::string names;
  for (const DTypeInfo& d : kInfo) {
    if (low == d.name) return d.type;
    names += names.empty() ? "" : ", ";
    names += d.name;
  }
  fail("unsupported dtype '", n, "' (expected one of ", names, ")");
}

std::string ggml_type_name(uint32_t g) {
  if (g < std::size(kGgmlNames)) return kGgmlNames[g];
  return "type " + std::to_string(g);
}

DType dtype_from_ggml(uint32_t g, const std::string& what) {
  for (const DTypeInfo& d : kInfo)
    if (d.ggml_type >= 0 && uint32_t(d.ggml_type) == g && d.type != DType::Q8_K && d.type != DType::Q8_1)
      return d.type;
  fail(what, ": tensor type ", ggml_type_name(g), " is not supported (camelid runs f32, f16, bf16, q4_0, q4_1, q5_0, "
       "q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl and iq4_xs)");
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
    default: break;
  }
  const DTypeInfo& d = dtype_info(t);
  const uint8_t* p = static_cast<const uint8_t*>(src);
  size_t bad = 0;
  for (size_t b = 0; b < n / size_t(d.block); ++b, p += d.block_bytes)
    for (int s = 0; s < d.n_scales; ++s) {
      uint16_t h;
      std::memcpy(&h, p + d.scale_offset[s], 2);
      if ((h & 0x7c00) == 0x7c00) {
        ++bad;
        break;
      }
    }
  return bad;
}

}  // namespace camelid
