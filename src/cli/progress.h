#pragma once
// A one-line progress bar on stderr for commands that write model files: tensor i/N, its name,
// MB written of the total, rate. Redrawn in place at most ~10 times a second, and only when
// stderr is a terminal or the user asked (--progress), so logs and pipes stay clean.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

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

// "loading NAME (4.1 GB) 2.3 s" redrawn on stderr while a model loads (the loaders report no
// progress of their own: mapping is quick, converting or reading a big file is not), then
// "loaded NAME in 2.3 s". Only on a terminal and only once the load has taken a moment, so
// small models and logs see nothing.
class LoadingIndicator {
 public:
  explicit LoadingIndicator(const std::string& path);
  ~LoadingIndicator();  // stops the redraw and prints the summary line if anything was drawn

 private:
  void loop();
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, drawn_ = false;
  std::thread thread_;
};

}  // namespace camelid::cli
