#pragma once
// Storage types of weights and activations: the float types and ggml's block-quantized types.
// Every layer asks the traits table (dtype_info) for block size, bytes, conversion and the
// activation format a quantized dot product pairs with; nothing else switches on a dtype.
// Compute is f32: float types are widened on the fly, quantized types dequantized per block
// (exact path) or dotted against activations quantized to `vec_dot_type` (fast path).
#include <cstdint>
#include <cstring>
#include <string>

namespace camelid {

enum class DType : uint8_t {
  F32, F16, BF16,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,   // 32-element blocks with one (or two) f16 scales
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,   // 256-element super-blocks ("k-quants")
  IQ4_NL, IQ4_XS,                       // 4-bit non-linear codebook
  Count
};

struct DTypeInfo {
  DType type;
  const char* name;        // lower case: "f32", "q4_k", "iq4_xs"
  int ggml_type;           // ggml's enum value (GGUF tensor type), -1 if none
  int block;               // elements per block (1 for float types)
  int block_bytes;         // bytes per block
  bool quantized;
  // Byte offsets of the f16 scales inside a block (a block is non-finite iff one of these is).
  int n_scales;
  int scale_offset[2];
  // Widens/dequantizes n elements (a multiple of `block`) exactly as ggml does.
  void (*to_f32)(const void* src, float* dst, int64_t n);
  // Rounds n elements (a multiple of `block`) to this type as ggml's reference quantizer does;
  // null where camelid has none (yet).
  void (*from_f32)(const float* src, void* dst, int64_t n);
  // The activation format of the integer dot product (Q8_0 for 32-blocks, Q8_K for k-quants);
  // the type itself for float types.
  DType vec_dot_type;
};

const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }
// "f32"/"F32"/"float32", "q4_k"/"Q4_K", ...; throws Error listing the names on an unknown one.
DType dtype_from_name(const std::string& name);
// The DType of a ggml/GGUF tensor type; throws Error naming `what` (a tensor) for types camelid
// cannot run (IQ2_XXS, TQ1_0, ...).
DType dtype_from_ggml(uint32_t ggml_type, const std::string& what);
// Name of any ggml type id, known or not ("iq2_xxs", "type 99"), for messages.
std::string ggml_type_name(uint32_t ggml_type);

inline bool is_quantized(DType t) { return dtype_info(t).quantized; }
// Bytes of n elements; n must be a multiple of the block size (callers check with row_fits).
inline size_t row_bytes(DType t, int64_t n) {
  const DTypeInfo& d = dtype_info(t);
  return size_t(n / d.block) * size_t(d.block_bytes);
}
inline bool row_fits(DType t, int64_t n) { return n % dtype_info(t).block == 0; }
// Bytes per element of a float type (f32 4, f16/bf16 2); for the SIMD float kernels only.
inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {  // round to nearest even, NaN kept quiet
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return uint16_t((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000 | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalize
      int e = -1;
      do { mant <<= 1; ++e; } while (!(mant & 0x400));
      u = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else {
    u = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f);  // round to nearest even

// Widens/dequantizes n elements of type t starting at src into dst (n a multiple of the block).
inline void to_f32(DType t, const void* src, float* dst, size_t n) { dtype_info(t).to_f32(src, dst, int64_t(n)); }

// How many of the n elements of type t at src are NaN or ±Inf (a scan at memory speed). For a
// quantized type: how many blocks have a non-finite scale (their values all are).
size_t count_nonfinite(DType t, const void* src, size_t n);

}  // namespace camelid
