// AdamW (torch.optim.AdamW semantics), clipping (torch.nn.utils.clip_grad_norm_) and the schedule.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "train/adamw.h"
#include "train/lr_schedule.h"

using namespace camelid;
using namespace camelid::train;

namespace {

Param make(const std::string& name, std::vector<float> v, bool decay) {
  Param p;
  p.name = name, p.cols = int64_t(v.size()), p.value = std::move(v);
  p.grad.assign(p.value.size(), 0.f), p.decay = decay;
  return p;
}

// torch's single-tensor AdamW step for one element, in double.
struct Ref {
  double p, m = 0, v = 0;
  void step(double g, int t, double lr, double b1, double b2, double eps, double wd) {
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    p -= lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + eps);
  }
};

}  // namespace

TEST(TrainAdamW, FirstStepByHand) {
  ParamSet ps;
  ps.params.push_back(make("w", {1.0f}, true));
  ps.params.push_back(make("norm", {1.0f}, false));
  ps.params[0].grad = {0.5f}, ps.params[1].grad = {0.5f};
  AdamW opt(ps, {0.9, 0.999, 1e-8, 0.1});
  opt.step(ps, 0.1);
  // Decay first: 1 * (1 - 0.1*0.1) = 0.99; m = 0.05, v = 0.00025; m/bc1 = 0.5, sqrt(v/bc2) = 0.5:
  // the update is lr * 1 (less eps).
  EXPECT_NEAR(ps.params[0].value[0], 0.99f - 0.1f, 1e-6);
  EXPECT_NEAR(ps.params[1].value[0], 1.0f - 0.1f, 1e-6);  // no decay on a norm
  EXPECT_EQ(opt.steps(), 1);
}

TEST(TrainAdamW, MatchesTorchFormulaOverSteps) {
  const double lr = 3e-3, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  ParamSet ps;
  ps.params.push_back(make("w", {0.3f, -1.2f, 2.0f}, true));
  ps.params.push_back(make("n", {0.7f, 1.1f}, false));
  AdamW opt(ps, {b1, b2, eps, wd});
  std::vector<Ref> ref;
  for (auto& p : ps.params)
    for (float x : p.value) ref.push_back({x});
  for (int t = 1; t <= 6; ++t) {
    size_t k = 0;
    for (auto& p : ps.params)
      for (size_t i = 0; i < p.value.size(); ++i, ++k) {
        const float g = float(std::sin(1.7 * t + 0.9 * double(k))) * (k == 2 ? 1e-3f : 1.0f);
        p.grad[i] = g;
        ref[k].step(g, t, lr, b1, b2, eps, p.decay ? wd : 0.0);
      }
    opt.step(ps, lr);
    k = 0;
    for (auto& p : ps.params)
      for (float x : p.value) EXPECT_NEAR(x, ref[k++].p, 1e-6) << "step " << t << " element " << k - 1;
  }
}

TEST(TrainAdamW, ZeroGradientOnlyDecays) {
  ParamSet ps;
  ps.params.push_back(make("w", {2.0f}, true));
  ps.params.push_back(make("n", {2.0f}, false));
  AdamW opt(ps, {0.9, 0.95, 1e-8, 0.5});
  opt.step(ps, 0.1);
  EXPECT_FLOAT_EQ(ps.params[0].value[0], 2.0f * float(1 - 0.1 * 0.5));
  EXPECT_EQ(ps.params[1].value[0], 2.0f);
}

TEST(TrainAdamW, FrozenParametersHaveNoState) {
  ParamSet ps;
  ps.params.push_back(make("w", {1.0f}, true));
  ps.params.push_back(make("frozen", {1.0f}, true));
  ps.params[1].trainable = false, ps.params[1].grad.clear();
  ps.params[0].grad = {1.0f};
  AdamW opt(ps, {});
  ASSERT_EQ(opt.slots().size(), 1u);
  opt.step(ps, 0.1);
  EXPECT_EQ(ps.params[1].value[0], 1.0f);
}

TEST(TrainAdamW, RejectsBadHyperparameters) {
  ParamSet ps;
  EXPECT_THROW(AdamW(ps, {1.0, 0.95, 1e-8, 0}), Error);
  EXPECT_THROW(AdamW(ps, {0.9, 0.95, -1, 0}), Error);
  EXPECT_THROW(AdamW(ps, {0.9, 0.95, 1e-8, NAN}), Error);
}

TEST(TrainClip, GlobalNormAndCoefficient) {
  ParamSet ps;
  ps.params.push_back(make("a", {0, 0}, true));
  ps.params.push_back(make("b", {0}, false));
  ps.params[0].grad = {3, 4}, ps.params[1].grad = {12};
  EXPECT_FLOAT_EQ(clip_grad_norm(ps, 0), 13.0f);  // 0: report only
  EXPECT_EQ(ps.params[1].grad[0], 12.0f);
  EXPECT_FLOAT_EQ(clip_grad_norm(ps, 100), 13.0f);  // coefficient clamped to 1
  EXPECT_EQ(ps.params[1].grad[0], 12.0f);
  EXPECT_FLOAT_EQ(clip_grad_norm(ps, 6.5), 13.0f);  // the norm before clipping
  const float coef = 6.5f / (13.0f + 1e-6f);
  EXPECT_FLOAT_EQ(ps.params[0].grad[0], 3 * coef);
  EXPECT_FLOAT_EQ(ps.params[0].grad[1], 4 * coef);
  EXPECT_FLOAT_EQ(ps.params[1].grad[0], 12 * coef);
  EXPECT_NEAR(clip_grad_norm(ps, 0), 6.5, 1e-5);
}

TEST(TrainSchedule, WarmupCosineConstant) {
  LrSchedule s;
  s.lr = 1.0, s.min_lr = 0.1, s.warmup = 3, s.total = 10;
  EXPECT_DOUBLE_EQ(s.at(0), 1.0 / 3);
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);  // cosine starts at the peak
  EXPECT_NEAR(s.at(6), 0.1 + 0.45 * (1 + std::cos(M_PI * 0.5)), 1e-12);
  EXPECT_DOUBLE_EQ(s.at(9), 0.1);  // and reaches the floor at the last step
  s.kind = LrSchedule::Kind::Constant;
  EXPECT_DOUBLE_EQ(s.at(1), 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_EQ(lr_kind_from_name("constant"), LrSchedule::Kind::Constant);
  EXPECT_THROW(lr_kind_from_name("linear"), Error);
}
