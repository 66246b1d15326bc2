#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace camelid::train {

AdamW::AdamW(const ParamSet& ps, AdamWConfig cfg) : cfg_(cfg) {
  if (!(cfg.beta1 >= 0 && cfg.beta1 < 1) || !(cfg.beta2 >= 0 && cfg.beta2 < 1))
    fail("AdamW: betas must lie in [0, 1), got ", cfg.beta1, ", ", cfg.beta2);
  if (!(cfg.eps >= 0) || !std::isfinite(cfg.eps)) fail("AdamW: eps must be >= 0, got ", cfg.eps);
  if (!(cfg.weight_decay >= 0) || !std::isfinite(cfg.weight_decay))
    fail("AdamW: weight decay must be >= 0, got ", cfg.weight_decay);
  for (const Param& p : ps.params)
    if (p.trainable) slots_.push_back({p.name, std::vector<float>(p.numel(), 0.f), std::vector<float>(p.numel(), 0.f)});
}

void AdamW::step(ParamSet& ps, double lr) {
  ++t_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, double(t_));
  const float decay = float(1.0 - lr * cfg_.weight_decay);
  const float b1 = float(cfg_.beta1), b2 = float(cfg_.beta2);
  const float one_b1 = float(1.0 - cfg_.beta1), one_b2 = float(1.0 - cfg_.beta2);
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2)), eps = float(cfg_.eps);
  size_t k = 0;
  for (Param& p : ps.params) {
    if (!p.trainable) continue;
    if (k >= slots_.size() || slots_[k].name != p.name || slots_[k].m.size() != p.numel() || p.grad.size() != p.numel())
      fail("AdamW: parameter ", p.name, " does not match the optimizer state");
    Slot& s = slots_[k++];
    float* __restrict x = p.value.data();
    const float* __restrict g = p.grad.data();
    float* __restrict m = s.m.data();
    float* __restrict v = s.v.data();
    const size_t n = p.numel();
    const bool wd = p.decay && cfg_.weight_decay != 0;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; ++i) {
      float xi = x[i];
      if (wd) xi = xi * decay;
      const float mi = m[i] * b1 + one_b1 * g[i];
      const float vi = v[i] * b2 + one_b2 * (g[i] * g[i]);
      m[i] = mi, v[i] = vi;
      const float denom = std::sqrt(vi) / bc2_sqrt + eps;
      x[i] = xi + (-step_size) * (mi / denom);
    }
  }
  if (k != slots_.size()) fail("AdamW: the model has fewer trainable parameters than the optimizer state");
}

float clip_grad_norm(ParamSet& ps, double max_norm) {
  double sq = 0;
  for (const Param& p : ps.params) {
    if (!p.trainable) continue;
    double s = 0;
    for (float g : p.grad) s += double(g) * double(g);
    const double n = float(std::sqrt(s));  // each tensor's norm as torch.norm returns it (f32)
    sq += n * n;
  }
  const float norm = float(std::sqrt(sq));
  if (max_norm > 0) {
    const float coef = std::min(1.0f, float(max_norm) / (norm + 1e-6f));
    for (Param& p : ps.params)
      if (p.trainable)
        for (float& g : p.grad) g *= coef;
  }
  return norm;
}

}  // namespace camelid::train
