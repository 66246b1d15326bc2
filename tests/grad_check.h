#pragma once
// Finite-difference gradient checks for the training tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace camelid::test {

// Checks analytic (f32) against central differences of f (double) at x, for every element.
inline void expect_grad(const std::string& what, const std::function<double(const std::vector<double>&)>& f,
                        std::vector<double> x, const std::vector<float>& analytic, double rel = 2e-3) {
  ASSERT_EQ(analytic.size(), x.size());
  double scale = 1e-6;
  for (float g : analytic) scale = std::max(scale, double(std::fabs(g)));
  for (size_t i = 0; i < x.size(); ++i) {
    const double h = 1e-6 * std::max(1.0, std::fabs(x[i])), x0 = x[i];
    x[i] = x0 + h;
    const double up = f(x);
    x[i] = x0 - h;
    const double down = f(x);
    x[i] = x0;
    EXPECT_NEAR(analytic[i], (up - down) / (2 * h), rel * scale) << what << " element " << i;
  }
}

}  // namespace camelid::test
