#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace camelid::cli {

ProgressBar::ProgressBar(bool enabled)
    : enabled_(enabled || ::isatty(2)), start_(std::chrono::steady_clock::now()), last_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

gguf::Writer::ProgressFn ProgressBar::callback() {
  if (!enabled_) return {};
  return [this](const gguf::Writer::Progress& p) { update(p); };
}

void ProgressBar::update(const gguf::Writer::Progress& p) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = p.bytes_done >= p.bytes_total;
  if (drawn_ && !last && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double mb = p.bytes_done / 1e6, total = p.bytes_total / 1e6;
  const int width = 24, filled = p.bytes_total ? int(width * double(p.bytes_done) / double(p.bytes_total)) : width;
  std::string bar(size_t(filled), '#');
  bar.resize(size_t(width), '.');
  std::fprintf(stderr, "\r[%s] tensor %zu/%zu %-28.28s %8.1f/%.1f MB %6.1f MB/s\x1b[K", bar.c_str(), p.tensor + 1,
               p.n_tensors, p.name ? p.name->c_str() : "", mb, total, secs > 0 ? mb / secs : 0.0);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace camelid::cli
