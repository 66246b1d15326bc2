#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

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

namespace {
// Bytes of a model: a file, or the files of a directory (not recursive).
uintmax_t model_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : n;
  }
  uintmax_t total = 0;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}
}  // namespace

LoadingIndicator::LoadingIndicator(const std::string& path) : start_(std::chrono::steady_clock::now()) {
  if (!::isatty(2)) return;
  const std::string name = std::filesystem::path(path).filename().string();
  char size[32] = "";
  if (const uintmax_t b = model_bytes(path); b > 0) std::snprintf(size, sizeof size, " (%.1f GB)", b / 1e9);
  label_ = (name.empty() ? path : name) + size;
  thread_ = std::thread([this] { loop(); });
}

void LoadingIndicator::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  // Quiet for the first half second: most loads are over by then.
  if (cv_.wait_for(lk, std::chrono::milliseconds(500), [this] { return done_; })) return;
  while (!done_) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\rloading %s %.1f s\x1b[K", label_.c_str(), secs);
    std::fflush(stderr);
    drawn_ = true;
    cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return done_; });
  }
}

LoadingIndicator::~LoadingIndicator() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (drawn_) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\rloaded %s in %.1f s\x1b[K\n", label_.c_str(), secs);
  }
}

}  // namespace camelid::cli
