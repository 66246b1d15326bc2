#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace camelid::train {

double LrSchedule::at(int s) const {
  if (s < warmup) return lr * double(s + 1) / double(warmup);
  if (kind == Kind::Constant) return lr;
  // Cosine from lr (first step after warmup) down to min_lr (last step).
  const int span = std::max(1, total - warmup - 1);
  const double progress = std::min(1.0, double(s - warmup) / double(span));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

LrSchedule::Kind lr_kind_from_name(const std::string& name) {
  if (name == "cosine") return LrSchedule::Kind::Cosine;
  if (name == "constant") return LrSchedule::Kind::Constant;
  fail("--lr-schedule: unknown schedule '", name, "' (cosine or constant)");
}

}  // namespace camelid::train
