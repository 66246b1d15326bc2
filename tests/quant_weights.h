#pragma once
// Random quantized weights and activations, and a test fixture per (instruction set, VNNI,
// weight type), for the quantized-kernel tests.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace camelid::testing_data {

// Random blocks: random payload bytes (every pattern is valid) and finite f16 scales of either sign.
struct QWeights {
  std::vector<uint8_t> storage;
  Tensor t;
  QWeights(DType dt, int rows, int cols, int misalign, std::mt19937& rng) {
    const DTypeInfo& info = dtype_info(dt);
    const size_t n = row_bytes(dt, cols) * rows;
    storage.resize(n + misalign);  // ends with the tensor: reads past it are ASan errors
    uint8_t* base = storage.data() + misalign;
    for (size_t i = 0; i < n; ++i) base[i] = uint8_t(rng());
    std::uniform_real_distribution<float> mag(0.002f, 0.05f);
    for (size_t blk = 0; blk < n / info.block_bytes; ++blk)
      for (int s = 0; s < info.n_scales; ++s) {
        const uint16_t v = f32_to_f16(rng() % 2 ? mag(rng) : -mag(rng));
        std::memcpy(base + blk * info.block_bytes + info.scale_offset[s], &v, 2);
      }
    t = Tensor{base, dt, rows, cols};
  }
};

// T rows of K normal values.
inline std::vector<float> random_x(int T, int K, std::mt19937& rng) {
  std::vector<float> x(size_t(T) * K);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto& v : x) v = d(rng);
  return x;
}

using QParam = std::tuple<kernels::Isa, bool, DType>;  // instruction set, VNNI, weight type

// Runs with the parameter's instruction set and VNNI (skipped where the CPU lacks them); restores
// the defaults after (exact mode off too).
class QKernelTest : public testing::TestWithParam<QParam> {
 protected:
  void SetUp() override {
    const auto [isa, vnni, dt] = GetParam();
    if (!kernels::isa_supported(isa)) GTEST_SKIP() << "CPU lacks this ISA";
    saved_ = kernels::active_isa();
    kernels::set_isa(isa);
    if (kernels::set_vnni(vnni) != vnni) {
      kernels::set_vnni(true);
      kernels::set_isa(saved_);
      GTEST_SKIP() << "VNNI unavailable here";
    }
  }
  void TearDown() override {
    kernels::set_exact(false);
    kernels::set_vnni(true);
    kernels::set_isa(saved_);
  }
  DType type() const { return std::get<2>(GetParam()); }
  kernels::Isa saved_ = kernels::Isa::Portable;
};

inline std::string qparam_name(const testing::TestParamInfo<QParam>& i) {
  const auto [isa, vnni, dt] = i.param;
  return std::string(kernels::isa_name(isa)) + (vnni ? "_vnni_" : "_") + dtype_name(dt);
}

}  // namespace camelid::testing_data
