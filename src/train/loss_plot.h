#pragma once
// The loss curve as a self-contained SVG: train loss per step and validation loss at eval steps,
// with axes, ticks and labels.
#include <string>
#include <utility>
#include <vector>

namespace camelid::train {

using Curve = std::vector<std::pair<double, double>>;  // (step, loss)

std::string loss_svg(const Curve& train, const Curve& val);

}  // namespace camelid::train
