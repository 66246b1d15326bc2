#include "train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace camelid::train {

namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string label(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// A "nice" tick step (1, 2 or 5 x 10^k) for about `n` ticks over span.
double tick_step(double span, int n) {
  const double raw = span / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

}  // namespace

std::string loss_svg(const Curve& train_in, const Curve& val) {
  // At most ~1000 points per curve: a long run is averaged over buckets of steps.
  Curve train;
  const size_t stride = (train_in.size() + 999) / 1000;
  for (size_t i = 0; i < train_in.size(); i += std::max<size_t>(stride, 1)) {
    double sx = 0, sy = 0;
    size_t n = 0;
    for (size_t j = i; j < std::min(train_in.size(), i + std::max<size_t>(stride, 1)); ++j)
      sx += train_in[j].first, sy += train_in[j].second, ++n;
    train.emplace_back(sx / double(n), sy / double(n));
  }
  const double W = 720, H = 420, L = 64, R = 20, T = 36, B = 52;
  double x0 = 0, x1 = 1, y0 = INFINITY, y1 = -INFINITY;
  for (const Curve* c : {static_cast<const Curve*>(&train), &val})
    for (auto [x, y] : *c)
      if (std::isfinite(y)) x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  y0 = std::max(0.0, y0 - 0.05 * (y1 - y0));
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };

  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) +
                  "\" viewBox=\"0 0 " + num(W) + " " + num(H) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(W / 2) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">camelid train: loss</text>\n";
  // Grid and ticks.
  const double xs = tick_step(x1 - x0, 8), ys = tick_step(y1 - y0, 6);
  for (double x = std::ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs)
    s += "<line x1=\"" + num(px(x)) + "\" y1=\"" + num(T) + "\" x2=\"" + num(px(x)) + "\" y2=\"" + num(H - B) +
         "\" stroke=\"#eee\"/><text x=\"" + num(px(x)) + "\" y=\"" + num(H - B + 16) + "\" text-anchor=\"middle\">" +
         label(x) + "</text>\n";
  for (double y = std::ceil(y0 / ys) * ys; y <= y1 + 1e-9; y += ys)
    s += "<line x1=\"" + num(L) + "\" y1=\"" + num(py(y)) + "\" x2=\"" + num(W - R) + "\" y2=\"" + num(py(y)) +
         "\" stroke=\"#eee\"/><text x=\"" + num(L - 6) + "\" y=\"" + num(py(y) + 4) + "\" text-anchor=\"end\">" +
         label(y) + "</text>\n";
  s += "<line x1=\"" + num(L) + "\" y1=\"" + num(H - B) + "\" x2=\"" + num(W - R) + "\" y2=\"" + num(H - B) +
       "\" stroke=\"black\"/><line x1=\"" + num(L) + "\" y1=\"" + num(T) + "\" x2=\"" + num(L) + "\" y2=\"" +
       num(H - B) + "\" stroke=\"black\"/>\n";
  s += "<text x=\"" + num((L + W - R) / 2) + "\" y=\"" + num(H - 12) + "\" text-anchor=\"middle\">step</text>\n";
  s += "<text transform=\"translate(16 " + num((T + H - B) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">cross-entropy (nats/token)</text>\n";
  auto polyline = [&](const Curve& c, const char* color) {
    std::string pts;
    for (auto [x, y] : c)
      if (std::isfinite(y)) pts += num(px(x)) + "," + num(py(y)) + " ";
    if (!pts.empty())
      s += std::string("<polyline fill=\"none\" stroke=\"") + color + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
    if (c.size() <= 64)  // markers when sparse (validation points)
      for (auto [x, y] : c)
        if (std::isfinite(y))
          s += "<circle cx=\"" + num(px(x)) + "\" cy=\"" + num(py(y)) + "\" r=\"2.5\" fill=\"" + color + "\"/>\n";
  };
  polyline(train, "#1f77b4");
  polyline(val, "#d62728");
  // Legend.
  s += "<line x1=\"" + num(W - R - 130) + "\" y1=\"" + num(T + 12) + "\" x2=\"" + num(W - R - 110) + "\" y2=\"" +
       num(T + 12) + "\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"" + num(W - R - 104) + "\" y=\"" +
       num(T + 16) + "\">train</text>\n";
  if (!val.empty())
    s += "<line x1=\"" + num(W - R - 130) + "\" y1=\"" + num(T + 30) + "\" x2=\"" + num(W - R - 110) + "\" y2=\"" +
         num(T + 30) + "\" stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"" + num(W - R - 104) + "\" y=\"" +
         num(T + 34) + "\">validation</text>\n";
  s += "</svg>\n";
  return s;
}

}  // namespace camelid::train
