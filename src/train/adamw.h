#pragma once
// AdamW with torch.optim.AdamW's semantics (torch 1.13, single-tensor path), and gradient
// clipping by global L2 norm as torch.nn.utils.clip_grad_norm_.
#include <cstdint>
#include <string>
#include <vector>

#include "model/params.h"

namespace camelid::train {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to Param::decay tensors only (2-D matrices, never norms)
};

// Per trainable parameter: first and second moments; one step count for all (torch keeps one per
// tensor, but they always advance together).
class AdamW {
 public:
  AdamW(const ParamSet& ps, AdamWConfig cfg);

  // One update with rate lr, from the grads in ps (left as they are). Per element, in f32 as
  // torch does, with the scalars computed in double then rounded to f32:
  //   p *= 1 - lr*wd                                   (decay tensors only)
  //   m = beta1*m + (1-beta1)*g ;  v = beta2*v + (1-beta2)*g*g
  //   p += -(lr / (1-beta1^t)) * m / (sqrt(v) / sqrt(1-beta2^t) + eps)
  void step(ParamSet& ps, double lr);

  int64_t steps() const { return t_; }
  const AdamWConfig& config() const { return cfg_; }

  // The state, by parameter name (checkpoints): m and v of each trainable parameter in ps order.
  struct Slot {
    std::string name;
    std::vector<float> m, v;
  };
  std::vector<Slot>& slots() { return slots_; }
  const std::vector<Slot>& slots() const { return slots_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  AdamWConfig cfg_;
  int64_t t_ = 0;
  std::vector<Slot> slots_;
};

// The global L2 norm of every trainable gradient (each tensor's norm in double, then the norm of
// those, returned as f32 like torch's); when max_norm > 0 the grads are scaled by
// min(1, max_norm / (norm + 1e-6)) (computed in f32, applied always, as torch does).
float clip_grad_norm(ParamSet& ps, double max_norm);

}  // namespace camelid::train
