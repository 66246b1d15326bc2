#pragma once
// The training progress line (camelid train, finetune): bar, step, loss, lr, tokens/s, ETA.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "train/trainer.h"

namespace camelid::cli {

// The progress line on a terminal (or with --progress): redrawn at most ~10 times a second.
class TrainStepProgress {
 public:
  TrainStepProgress(bool enabled, int64_t total) : on_(enabled || ::isatty(2)), total_(total) {}
  ~TrainStepProgress() { end(); }
  void update(const train::StepLog& l, double tokens_per_s, double eta_s) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && l.step != total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int width = 24, fill = int(double(width) * double(l.step) / double(total_));
    std::string bar(size_t(fill), '#');
    bar.resize(width, '.');
    const int eta = int(std::lround(eta_s));
    std::fprintf(stderr, "\r\033[K[%s] %lld/%lld loss %.4f lr %.2e %.0f tok/s ETA %dh%02dm%02ds", bar.c_str(),
                 (long long)l.step, (long long)total_, l.loss, l.lr, tokens_per_s, eta / 3600, eta / 60 % 60, eta % 60);
    drawn_ = true;
  }
  void end() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }
  bool enabled() const { return on_; }

 private:
  bool on_, drawn_ = false;
  int64_t total_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace camelid::cli
