// Interleaved (panel) weights for decode: the layout round-trips byte for byte, and products with
// interleaved weights equal those with the row-major ones bit for bit, on every instruction set
// (the AVX2 panel kernel up to 4 activation rows, the rows read back elsewhere: batches, other
// instruction sets, --exact), with and without VNNI, whatever the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "quant_weights.h"

using namespace camelid;
using namespace camelid::testing_data;
using kernels::Isa;

namespace {

const DType kPanelTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q2_K, DType::Q3_K, DType::IQ4_NL, DType::IQ4_XS};

struct Panels {
  std::vector<uint8_t> bytes;
  Tensor t;
  explicit Panels(const Tensor& w) : bytes(w.nbytes() + 1) { t = kernels::interleave(w, bytes.data() + 1); }  // misaligned
};

TEST(QPanels, RoundTripByteForByte) {
  std::mt19937 rng(1);
  for (DType dt : kPanelTypes) {
    const int K = dtype_info(dt).block == 32 ? 96 : 512, O = 24;
    QWeights w(dt, O, K, 0, rng);
    Panels p(w.t);
    EXPECT_EQ(p.t.interleaved, 8);
    EXPECT_EQ(p.t.nbytes(), w.t.nbytes());
    EXPECT_NE(0, std::memcmp(p.t.data, w.t.data, w.t.nbytes())) << dtype_name(dt) << ": nothing moved";
    std::vector<uint8_t> back(w.t.nbytes());
    kernels::deinterleave_rows(p.t, 0, O, back.data());
    EXPECT_EQ(0, std::memcmp(back.data(), w.t.data, back.size())) << dtype_name(dt);
    kernels::deinterleave_rows(p.t, 8, 16, back.data());  // one panel from the middle
    EXPECT_EQ(0, std::memcmp(back.data(), w.t.row(8), 8 * w.t.row_nbytes())) << dtype_name(dt);
  }
}

TEST(QPanels, RefusesWhatHasNoPanels) {
  std::mt19937 rng(2);
  QWeights odd(DType::Q4_0, 12, 64, 0, rng), ok(DType::Q4_0, 16, 64, 0, rng);
  std::vector<uint8_t> dst(odd.t.nbytes() + ok.t.nbytes()), f16_bytes(8 * 64 * 2);
  const Tensor f16{f16_bytes.data(), DType::F16, 8, 64};
  EXPECT_THROW(kernels::interleave(odd.t, dst.data()), Error);  // rows not a multiple of 8
  EXPECT_THROW(kernels::interleave(f16, dst.data()), Error);    // no panel layout
  EXPECT_FALSE(kernels::interleave_supported(odd.t));
  EXPECT_FALSE(kernels::interleave_supported(f16));
  EXPECT_FALSE(kernels::interleave_supported(Tensor{dst.data(), DType::F32, 8, 8}));
  EXPECT_EQ(kernels::interleave_supported(ok.t), kernels::active_isa() == Isa::AVX2 && !kernels::vnni_active());
  const Tensor p = kernels::interleave(ok.t, dst.data());
  EXPECT_FALSE(kernels::interleave_supported(p));
  EXPECT_THROW(kernels::interleave(p, dst.data() + ok.t.nbytes()), Error);  // already interleaved
  EXPECT_THROW(kernels::deinterleave_rows(p, 4, 16, dst.data()), Error);   // not a whole panel
  EXPECT_THROW(kernels::deinterleave_rows(p, 8, 24, dst.data()), Error);   // past the end
  EXPECT_THROW(kernels::deinterleave_rows(ok.t, 0, 8, dst.data()), Error); // row-major
}

class QPanelMatmul : public QKernelTest {};

std::vector<float> product(const float* x, int T, const Tensor& w) {
  std::vector<float> y(size_t(T) * w.rows, -7.f);
  kernels::matmul(x, T, w, y.data());
  return y;
}

TEST_P(QPanelMatmul, EqualsRowMajorBitForBit) {
  const DType dt = type();
  std::mt19937 rng(3);
  const std::vector<int> widths = dtype_info(dt).block == 32 ? std::vector<int>{32, 96, 4352} : std::vector<int>{256, 4352};
  for (int K : widths)
    for (int O : {8, 200}) {  // one panel; several blocks of rows across threads
      QWeights w(dt, O, K, 1, rng);
      Panels p(w.t);
      for (int T : {1, 2, 3, 4, 5, 9}) {
        const std::vector<float> x = random_x(T, K, rng);
        const std::vector<float> ref = product(x.data(), T, w.t), y = product(x.data(), T, p.t);
        ASSERT_EQ(0, std::memcmp(y.data(), ref.data(), y.size() * 4)) << "K=" << K << " O=" << O << " T=" << T;
      }
    }
}

TEST_P(QPanelMatmul, SeveralOutputsThreadsAndExactMode) {
  const DType dt = type();
  std::mt19937 rng(4);
  const int K = dtype_info(dt).block == 32 ? 512 : 1024;
  QWeights a(dt, 96, K, 0, rng), b(dt, 40, K, 2, rng);
  Panels pa(a.t), pb(b.t);
  const std::vector<float> x = random_x(7, K, rng);
  std::vector<float> ya(2 * 96), yb(2 * 40);
  kernels::matmul(x.data(), 2, {{pa.t, ya.data()}, {pb.t, yb.data()}});  // row-major and panels mixed in one call
  EXPECT_EQ(ya, product(x.data(), 2, a.t));
  EXPECT_EQ(yb, product(x.data(), 2, b.t));
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = product(x.data(), 2, pa.t);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, ya);
  kernels::set_exact(true);  // f32 activations against dequantized rows
  EXPECT_EQ(product(x.data(), 2, pa.t), product(x.data(), 2, a.t));
  EXPECT_EQ(product(x.data(), 7, pb.t), product(x.data(), 7, b.t));
}

INSTANTIATE_TEST_SUITE_P(Portable, QPanelMatmul, testing::Combine(testing::Values(Isa::Portable), testing::Values(false), testing::ValuesIn(kPanelTypes)),
                         qparam_name);
INSTANTIATE_TEST_SUITE_P(Simd, QPanelMatmul,
                         testing::Combine(testing::Values(Isa::AVX2, Isa::AVX512), testing::Values(false, true), testing::ValuesIn(kPanelTypes)),
                         qparam_name);

}  // namespace
