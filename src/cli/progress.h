#pragma once
// A one-line progress bar on stderr for commands that write model files: tensor i/N, its name,
// MB written of the total, rate. Redrawn in place at most ~10 times a second, and only when
// stderr is a terminal or the user asked (--progress), so logs and pipes stay clean.
#include <chrono>
#include <string>

#include "core/gguf.h"

namespace camelid::cli {

class ProgressBar {
 public:
  // enabled: the user's --progress; a terminal on stderr enables it too.
  explicit ProgressBar(bool enabled);
  ~ProgressBar();  // ends the line if one was drawn
  // For gguf::Writer::write (null when disabled).
  gguf::Writer::ProgressFn callback();
  void update(const gguf::Writer::Progress& p);
  void finish();

 private:
  bool enabled_, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace camelid::cli
