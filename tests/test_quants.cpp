// ggml's block-quantized types: dequantization bit-identical to ggml on every tensor of the
// GGUF fixtures, quantization byte-identical to ggml's reference quantizers, and the behaviour
// of both on edge-case rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/quants_blocks.h"
#include "fixtures.h"
#include "sha256.h"

namespace {

using camelid::DType;
using camelid::dtype_info;
using camelid::test::fixture;
using camelid::test::read_file;
using camelid::test::sha256_hex;

constexpr DType kQuantTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                 DType::Q8_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                 DType::Q6_K, DType::Q8_K, DType::IQ4_NL, DType::IQ4_XS};

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(camelid::row_bytes(t, int64_t(x.size())));
  dtype_info(t).from_f32(x.data(), q.data(), int64_t(x.size()));
  return q;
}

std::vector<float> dequantize(DType t, const void* q, size_t n) {
  std::vector<float> y(n);
  camelid::to_f32(t, q, y.data(), n);
  return y;
}

std::vector<float> round_trip(DType t, const std::vector<float>& x) {
  const std::vector<uint8_t> q = quantize(t, x);
  return dequantize(t, q.data(), x.size());
}

// ---------------------------------------------------------------------------------------------
// Dequantization against the fixtures: every tensor of qmix-mixed.gguf (all 12 file types) and
// tiny-llama3-q8_0.gguf, read raw at its recorded offset.

TEST(QuantsConformance, DequantizesEveryFixtureTensorBitIdenticallyToGgml) {
  std::ifstream in(fixture("reference/public-gguf-dequant.json"));
  ASSERT_TRUE(in) << "missing fixture reference/public-gguf-dequant.json";
  const nlohmann::json ref = nlohmann::json::parse(in);
  std::map<std::string, int> tensors_per_type;
  for (const auto& [file, tensors] : ref.at("files").items()) {
    const std::string bytes = read_file(fixture(file));
    const std::vector<uint8_t> data(bytes.begin(), bytes.end());
    for (const auto& t : tensors) {
      const std::string name = file + ":" + t.at("name").get<std::string>();
      const std::string type_name = t.at("type").get<std::string>();
      SCOPED_TRACE(name + " (" + type_name + ")");
      const DType type = camelid::dtype_from_name(type_name);
      int64_t n = 1;
      for (int64_t d : t.at("ne")) n *= d;
      const size_t offset = t.at("offset"), n_bytes = t.at("n_bytes");
      ASSERT_EQ(camelid::row_bytes(type, n), n_bytes);
      ASSERT_LE(offset + n_bytes, data.size());
      const std::vector<float> y = dequantize(type, data.data() + offset, size_t(n));
      EXPECT_EQ(sha256_hex(y.data(), y.size() * sizeof(float)), t.at("sha256").get<std::string>());
      const auto& first8 = t.at("first8");
      for (size_t i = 0; i < first8.size(); ++i) EXPECT_EQ(double(y[i]), first8[i].get<double>()) << "element " << i;
      double sum = 0, sumsq = 0;
      for (float v : y) {
        sum += v;
        sumsq += double(v) * v;
      }
      EXPECT_NEAR(sum, t.at("sum").get<double>(), 1e-9 * (1 + sumsq));
      EXPECT_NEAR(sumsq, t.at("sumsq").get<double>(), 1e-9 * sumsq);
      ++tensors_per_type[type_name];
    }
  }
  for (const char* type : {"F32", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                           "IQ4_NL", "IQ4_XS"})
    EXPECT_GT(tensors_per_type[type], 0) << type << " missing from the fixture";
}

// Blocks are read with memcpy: any byte address works (GGUF data of 18-byte blocks, mmap).
TEST(QuantsConformance, DequantizesFromUnalignedAddresses) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(512);
  for (float& v : x) v = normal(rng);
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    const std::vector<uint8_t> q = quantize(t, x);
    std::vector<uint8_t> shifted(q.size() + 1);
    std::memcpy(shifted.data() + 1, q.data(), q.size());
    EXPECT_EQ(dequantize(t, shifted.data() + 1, x.size()), dequantize(t, q.data(), x.size()));
  }
}

// ---------------------------------------------------------------------------------------------
// Quantization against ggml's reference quantizers.
//
// The expected digests were produced by ggml itself: ggml-quants.c of ggml commit b3a469a1
// (the version in llama.cpp c392e50, Feb 2025), compiled as ggml-base is (gcc -O3 -DNDEBUG
// -std=gnu11, baseline x86-64: no FMA, software f16 conversion), driven by a throwaway C program
// that builds the rows of reference_rows() with the same generator, quantizes them one 256-value
// row at a time into a zero-filled buffer with quantize_row_<type>_ref (quantize_iq4_nl /
// quantize_iq4_xs with no importance matrix for the IQ4 types, as llama-quantize runs them),
// and dequantizes the result with ggml's dequantize_row_<type>; digests are sha256 of those
// bytes (float32 little-endian for the dequantized values).

uint64_t g_state;
uint32_t next_u32() {
  g_state = g_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return uint32_t(g_state >> 33);
}
float uniform01() { return float(next_u32() >> 7) * (1.0f / 16777216.0f); }
float normalish() {  // Irwin-Hall: sum of 4 uniforms, integer-derived, same bits in C and C++
  const float a = uniform01();
  const float b = uniform01();
  const float c = uniform01();
  const float d = uniform01();
  return a + b + c + d - 2.0f;
}

// Rows 0..33: random rows of several scales and offsets, heavy tails, and edge cases: zeros,
// constants, one outlier, large and tiny magnitudes, zero sub-blocks, small integers, exact
// half steps, a single tiny nonzero value. v is the element's normalish() draw.
float fixed_row_value(int r, int j, float v) {
  if (r < 16) return v * 0.02f * float(1 + r);
  if (r < 20) return v * 0.05f + 0.1f * float(r - 17);
  if (r < 24) return v * v * v * 0.1f;
  switch (r) {
    case 24: return 0.0f;
    case 25: return 0.5f;
    case 26: return -3.0f;
    case 27: return j == 37 ? 4.0f : v * 0.01f;
    case 28: return v * 1.0e4f;
    case 29: return v * 1.0e-6f;
    case 30: return (j / 32) % 2 ? v : 0.0f;
    case 31: return float(int(next_u32() % 16) - 8);
    case 32: return 0.5f * float(j % 9 - 4);
    default: return j == 200 ? -1.0e-3f : 0.0f;
  }
}

// Rows 34..: a random power-of-two scale (2^-16 .. 2^7), cycling through plain, offset, sparse,
// sub-blocks of 16 scaled 1/64 .. 2, uniform, all positive.
float random_row_value(int kind, int j, float v, float scale, float offset) {
  switch (kind) {
    case 0: return v * scale;
    case 1: return v * scale + offset;
    case 2: return next_u32() % 8 == 0 ? v * scale : 0.0f;
    case 3: return v * scale * (float(1 << ((j / 16) % 8)) * (1.0f / 64.0f));
    case 4: return (uniform01() - 0.5f) * scale;
    default: return std::fabs(v) * scale + scale * 0.1f;
  }
}

constexpr int kRow = 256, kFixedRows = 34, kRows = 94;

std::vector<float> reference_rows() {
  std::vector<float> x(size_t(kRow) * kRows);
  g_state = 12345;
  for (int r = 0; r < kRows; ++r) {
    float* y = x.data() + size_t(r) * kRow;
    float scale = 1.0f, offset = 0.0f;
    if (r >= kFixedRows) {
      scale = std::ldexp(1.0f, int(next_u32() % 24) - 16);
      offset = scale * float(int(next_u32() % 7) - 3);
    }
    for (int j = 0; j < kRow; ++j) {
      const float v = normalish();  // drawn first: the generator order is part of the input
      y[j] = r < kFixedRows ? fixed_row_value(r, j, v) : random_row_value(r % 6, j, v, scale, offset);
    }
  }
  return x;
}

struct GgmlDigest {
  DType type;
  const char* quantized;
  const char* dequantized;  // null: ggml has no dequantize_row for the type
};

constexpr GgmlDigest kGgmlDigests[] = {
    {DType::Q4_0, "45dea1f09d6beee1227c946d973e5bd361c71360b6a5a68030fdde86c7a8dcba",
     "3d74742159d3eb9ae12b9d8ade3080af3d47b4a12e1f046fce5f8de360072db7"},
    {DType::Q4_1, "0637baae376411b3837e784bc3412aa84d13f58b026ec12ae6e211bfe48d77ca",
     "787f40ca47689e50458fc43c3da33bd043c0df891b7d3111e7a62557f19954d2"},
    {DType::Q5_0, "c2d45ee005019eee97c849514de3d7b457cc3dcb0f7f349c90787d19e4b53e69",
     "ca06ed03f6e27ebd5707e57593616778d3424c5be2280cadc14b3f946e54eab5"},
    {DType::Q5_1, "375e029b129e52daa70571d7cb58c4557da43fcfa5b1be21e6d3fdd0dd1f1764",
     "31393a57ca590bcd29a618bf5749b2b4d1443a4f9177a8aa5f8e59ba2c4565e9"},
    {DType::Q8_0, "aab70898b80c1c8335d57433d02760bf1736d66771706da4847d76d2bced3379",
     "2b386a73d35af169519a5bdf1622f1d682aed4bd3c1b0f0a18d9504c1dba7f0d"},
    {DType::Q8_1, "18ab76b241a47b64e299f379839b2d04e59e1eff45cc63cc08cc2ebb47134303", nullptr},
    {DType::Q2_K, "f09250d1eeed49e91cea7a516e8178b85351a0fef7a229a43769da0a21b919bd",
     "08bbcebc8b1dd28af7072253a89d4105f62baae59cf99ae2ae6cd9fc0a221782"},
    {DType::Q3_K, "f9c33fa58cff12540521df7aeb98fa608bb679f2b670e555548385913b04b1f0",
     "3d02575a92fdc4972594c6b6ebbd01948e1bebd984425d7c27bc12d886a55654"},
    {DType::Q4_K, "914a8879746faa441c5b6bd99c6a1f8038d65fd766a5c50c94b46d919b3a4324",
     "0bc13d76228fe5af4c0d85fe52f91e6f4132ade54ffbac0071a1aeffa4d6c036"},
    {DType::Q5_K, "5f6e8d968336e497119cbe31aef3bb61786ff587e1a5e66c650cc07d32a3c0f0",
     "e698110b7a6bdef6395190e84b8e8608343fe5cf2a4150a4e6750ebbfc105699"},
    {DType::Q6_K, "d83ef83ece9a60f20265e4a15e3b464c400aa96ae86e672ce230e1c2f26a8fcc",
     "abf19f62081ec380bab97bad03f4dbc9a8684f4d9b443213548224d1b50bccae"},
    {DType::Q8_K, "b1925279575cebd29e996a36e54e4e8e02f55dd7ea749b27348a8a4c35efaafd",
     "d412ade7373fbea2c3ee2bdd42bfe0de79e9bcbb30c136fa0dc08a2953a4ff3a"},
    {DType::IQ4_NL, "179a2411ca52d8a84fd88472aed0266c713e836fdf166e6469269070aa68d76d",
     "58567f307dad0e135559ec4d3db389e2ee3138b2a8f7412a2741672020ba44da"},
    {DType::IQ4_XS, "273d8171dd10195d4bd7847239d32ea4e2d11eaf1ea4366d0b4404e16ac541e5",
     "3ddcb4e91334b1ad3523604055127fc8592645faf6cad210bd2d2c0871ae84a6"},
};

TEST(QuantsGgmlReference, InputRowsAreTheOnesGgmlQuantized) {
  const std::vector<float> x = reference_rows();
  EXPECT_EQ(sha256_hex(x.data(), x.size() * sizeof(float)),
            "ebd8841493ec6139f53234dd8b076599cf406ccb1467314276b753b7a94220a2");
}

TEST(QuantsGgmlReference, QuantizedBytesAndTheirDequantizationMatchGgml) {
  const std::vector<float> x = reference_rows();
  for (const GgmlDigest& g : kGgmlDigests) {
    SCOPED_TRACE(dtype_info(g.type).name);
    const size_t row_bytes = camelid::row_bytes(g.type, kRow);
    std::vector<uint8_t> q(row_bytes * kRows);
    for (int r = 0; r < kRows; ++r)
      dtype_info(g.type).from_f32(x.data() + size_t(r) * kRow, q.data() + size_t(r) * row_bytes, kRow);
    EXPECT_EQ(sha256_hex(q.data(), q.size()), g.quantized);
    if (g.dequantized) {
      const std::vector<float> y = dequantize(g.type, q.data(), x.size());
      EXPECT_EQ(sha256_hex(y.data(), y.size() * sizeof(float)), g.dequantized);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Behaviour of quantize -> dequantize.

std::vector<float> gaussian_row(size_t n, float sigma, float mean, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s / double(x.size()));
}

double rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  return std::sqrt(s / double(x.size()));
}

// Relative RMS error on Gaussian rows: about 2^-bits of the range per value, a little better
// for the fitted (k, IQ4) types. Bounds sit ~25% above what the reference quantizers give.
double max_relative_error(DType t) {
  switch (t) {
    case DType::Q4_0: return 0.11;
    case DType::Q4_1: return 0.1;
    case DType::Q5_0: return 0.052;
    case DType::Q5_1: return 0.047;
    case DType::Q8_0: case DType::Q8_1: return 0.0066;
    case DType::Q2_K: return 0.37;
    case DType::Q3_K: return 0.19;
    case DType::Q4_K: return 0.09;
    case DType::Q5_K: return 0.046;
    case DType::Q6_K: return 0.027;
    case DType::Q8_K: return 0.0084;
    case DType::IQ4_NL: case DType::IQ4_XS: return 0.1;
    default: return 0;
  }
}

TEST(QuantsRoundTrip, ReconstructionErrorIsBoundedPerType) {
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    for (float sigma : {1e-3f, 0.05f, 1.0f, 300.0f}) {
      const std::vector<float> x = gaussian_row(4096, sigma, 0.0f, 11);
      const std::vector<float> y = round_trip(t, x);
      EXPECT_LE(rms_error(x, y), max_relative_error(t) * rms(x)) << "sigma " << sigma;
    }
    // An offset row: the types with a min (q4_1, q5_1, k-quants) do well, the symmetric ones
    // still within their bound relative to the values' magnitude.
    const std::vector<float> x = gaussian_row(4096, 0.05f, 0.2f, 12);
    EXPECT_LE(rms_error(x, round_trip(t, x)), max_relative_error(t) * rms(x));
  }
}

TEST(QuantsRoundTrip, ZerosStayZero) {
  const std::vector<float> x(512, 0.0f);
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    for (float v : round_trip(t, x)) EXPECT_EQ(v, 0.0f);
  }
}

TEST(QuantsRoundTrip, ConstantRowsAreReproducedClosely) {
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    for (float c : {0.5f, -3.0f, 1e-2f}) {
      const std::vector<float> x(512, c);
      // A constant is the group maximum: f16 rounding of the scale, at worst a level step.
      for (float v : round_trip(t, x)) EXPECT_NEAR(v, c, std::fabs(c) * 0.15f) << "constant " << c;
    }
  }
}

TEST(QuantsRoundTrip, SingleOutlierKeepsItsValueAndTheRestStaysSmall) {
  std::vector<float> x = gaussian_row(512, 0.01f, 0.0f, 13);
  x[37] = 4.0f;
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    const std::vector<float> y = round_trip(t, x);
    EXPECT_NEAR(y[37], 4.0f, 4.0f * 0.05f);
    // The outlier's block loses its small values to the coarse scale; other blocks do not care.
    const size_t block = size_t(dtype_info(t).block), outlier_block = 37 / block;
    for (size_t i = 0; i < x.size(); ++i)
      if (i / block != outlier_block) {
        EXPECT_NEAR(y[i], x[i], 0.01f) << "element " << i;
      }
  }
}

TEST(QuantsRoundTrip, LargeAndTinyMagnitudesStayFinite) {
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    // Large: the scales still fit f16 (max 65504), the error is relative as usual.
    const std::vector<float> big = gaussian_row(512, 3000.0f, 0.0f, 14);
    const std::vector<float> yb = round_trip(t, big);
    for (float v : yb) EXPECT_TRUE(std::isfinite(v));
    EXPECT_LE(rms_error(big, yb), max_relative_error(t) * rms(big) * 1.2);
    // Tiny: f16 scales underflow (to subnormals or 0), so values may flush toward zero, but
    // nothing becomes large or non-finite.
    const std::vector<float> tiny = gaussian_row(512, 1e-7f, 0.0f, 15);
    const std::vector<float> yt = round_trip(t, tiny);
    for (size_t i = 0; i < tiny.size(); ++i) {
      EXPECT_TRUE(std::isfinite(yt[i]));
      EXPECT_LE(std::fabs(yt[i]), 1e-5f);
    }
  }
}

// Dequantized values are representable, so quantizing them again gives the same bytes for the
// types whose scale is a plain max (ggml's reference does the same): the max maps back to the
// same level and the f16 scale is recovered exactly. (Not Q8_1: its s = d * sum(q) is computed
// from the float d the first time, from the f16-rounded d the second.)
TEST(QuantsRoundTrip, RequantizingDequantizedValuesGivesTheSameBytes) {
  const std::vector<float> x = gaussian_row(2048, 0.7f, 0.0f, 16);
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q8_0}) {
    SCOPED_TRACE(dtype_info(t).name);
    const std::vector<uint8_t> q = quantize(t, x);
    EXPECT_EQ(quantize(t, dequantize(t, q.data(), x.size())), q);
  }
}

// For the fitted types a second pass may pick a slightly different scale but reproduces the
// values it was given far more closely than a first pass on arbitrary values.
TEST(QuantsRoundTrip, RequantizingDequantizedValuesIsNearlyExact) {
  const std::vector<float> x = gaussian_row(2048, 0.7f, 0.0f, 17);
  for (DType t : kQuantTypes) {
    SCOPED_TRACE(dtype_info(t).name);
    const std::vector<float> y = round_trip(t, x);
    EXPECT_LE(rms_error(y, round_trip(t, y)), 0.25 * rms_error(x, y));
  }
}

TEST(QuantsQ8K, BsumsAreSumsOfSixteenQs) {
  std::vector<float> x = gaussian_row(1024, 2.0f, 0.3f, 18);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero block: bsums 0 too
  const std::vector<uint8_t> q = quantize(DType::Q8_K, x);
  for (size_t b = 0; b < x.size() / camelid::quants::QK_K; ++b) {
    camelid::quants::BlockQ8_K blk;
    std::memcpy(&blk, q.data() + b * sizeof blk, sizeof blk);
    for (int j = 0; j < camelid::quants::QK_K / 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blk.qs[16 * j + i];
      EXPECT_EQ(blk.bsums[j], sum) << "block " << b << " group " << j;
    }
    if (b == 1) {
      EXPECT_EQ(blk.d, 0.0f);
    }
  }
}

// count_nonfinite on a quantized type counts blocks whose f16 scale (d, or d/m, d/dmin, Q8_1's
// d/s) is NaN or Inf; such a block dequantizes to non-finite values (except a bad Q8_1 s, which
// only the dot product reads).
TEST(QuantsNonFinite, CountsBlocksWithACorruptedScale) {
  for (DType t : kQuantTypes) {
    const camelid::DTypeInfo& info = dtype_info(t);
    if (info.n_scales == 0) continue;  // Q8_K: float scale, activations only
    SCOPED_TRACE(info.name);
    const std::vector<float> x = gaussian_row(size_t(info.block) * 4, 1.0f, 0.1f, 19);
    std::vector<uint8_t> q = quantize(t, x);
    EXPECT_EQ(camelid::count_nonfinite(t, q.data(), x.size()), 0u);
    const uint16_t inf = 0x7c00, nan = 0xfe00;
    std::memcpy(q.data() + 1 * size_t(info.block_bytes) + info.scale_offset[0], &inf, 2);
    std::memcpy(q.data() + 3 * size_t(info.block_bytes) + info.scale_offset[info.n_scales - 1], &nan, 2);
    EXPECT_EQ(camelid::count_nonfinite(t, q.data(), x.size()), 2u);
    const std::vector<float> y = dequantize(t, q.data(), x.size());
    auto any_nonfinite = [&](int b) {
      for (int i = 0; i < info.block; ++i)
        if (!std::isfinite(y[size_t(b) * info.block + i])) return true;
      return false;
    };
    EXPECT_FALSE(any_nonfinite(0));
    EXPECT_TRUE(any_nonfinite(1));
    EXPECT_FALSE(any_nonfinite(2));
    EXPECT_EQ(any_nonfinite(3), t != DType::Q8_1);
  }
}

}  // namespace
