#pragma once
// Learning-rate schedules: linear warmup then cosine decay to a minimum, or constant.
#include <string>

namespace camelid::train {

struct LrSchedule {
  enum class Kind { Cosine, Constant } kind = Kind::Cosine;
  double lr = 3e-4;       // peak
  double min_lr = 0;      // cosine's floor, reached at the last step
  int warmup = 0;         // steps of linear warmup: step s < warmup uses lr * (s + 1) / warmup
  int total = 1;          // steps in the run

  // The rate of (0-based) optimizer step s.
  double at(int s) const;
};

LrSchedule::Kind lr_kind_from_name(const std::string& name);  // "cosine" | "constant"; throws Error

}  // namespace camelid::train
