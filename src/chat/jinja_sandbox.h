#pragma once
// The sandbox a template renders in. Chat templates arrive inside downloaded models, so they are
// hostile code: like jinja2's SandboxedEnvironment (plus what Python gives it for free, a
// recursion limit and big ints instead of wrap-around), every render runs under limits on steps,
// memory, output and nesting, and any violation is a LimitError, never a crash or a hang.
//
// A render installs a Budget for its thread; the interpreter and the built-ins charge it through
// the free functions below (no-ops when no render is running, e.g. for values built by callers).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace camelid::jinja {

// Errors of the template itself (bad syntax, unknown filter, wrong types). what() is the message
// alone, as the template wrote it.
class TemplateError : public Error {
 public:
  using Error::Error;
};

// A sandbox limit was reached (steps, memory, output, nesting, integer range).
class LimitError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// Chosen far above what real templates need (a 1,000-message conversation with 20 tools through
// Llama 3.1's template: ~100,000 steps = 1% of max_steps, 0.4 MiB peak, 1.5 ms; see
// tests/test_jinja_sandbox.cpp) while a hostile render still ends within about a second (the
// worst seen: 0.7 s in Release) and the recursion fits a small thread stack (~0.6 MiB at max_depth).
struct Limits {
  int64_t max_steps = 10'000'000;     // evaluated nodes and loop iterations, plus builtin work (1 per ~8 items or ~32 bytes)
  size_t max_memory = size_t(256) << 20;  // live bytes of strings, lists, dicts and output the render created
  size_t max_string = size_t(64) << 20;   // the rendered output, and any one string a render builds
  int max_depth = 1000;               // nested evaluation: statements, expressions, macro calls, nested values
  int64_t max_range = 100000;         // items of one range(), as jinja2's sandbox (MAX_RANGE)
};

// The parser's own limits: nesting of statements and expressions (also the depth of the tree a
// long chain such as a+b+c+... builds), and the size of a template's source.
constexpr int kMaxParseDepth = 200;
constexpr size_t kMaxSourceBytes = size_t(1) << 20;

class Budget {
 public:
  explicit Budget(const Limits& lim);  // becomes the thread's current budget until destroyed
  ~Budget();
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;

  static Budget* current();  // out of line: thread_local access stays in one translation unit
  const Limits& limits() const { return lim_; }
  uint64_t id() const { return id_; }

  void tick(int64_t n) {
    steps_ += n;
    if (steps_ > lim_.max_steps) out_of_steps();
  }
  void charge(size_t bytes);  // throws LimitError past max_memory (and then counts nothing)
  void release(size_t bytes) { live_ -= bytes < live_ ? bytes : live_; }

  int64_t steps() const { return steps_; }
  size_t live_bytes() const { return live_; }
  size_t peak_bytes() const { return peak_; }

 private:
  [[noreturn]] void out_of_steps() const;

  Limits lim_;
  uint64_t id_;
  Budget* outer_;
  int64_t steps_ = 0;
  size_t live_ = 0, peak_ = 0;
};

// The current render's limits, or the defaults outside a render.
const Limits& active_limits();

inline void tick(int64_t n = 1) {
  if (Budget* b = Budget::current()) b->tick(n);
}
inline void tick_items(size_t n) { tick(1 + int64_t(n >> 3)); }   // copying or scanning n values
inline void tick_bytes(size_t n) { tick(1 + int64_t(n >> 5)); }   // copying or scanning n bytes

// Throws LimitError if a string of `bytes` would pass max_string. Call before building one.
void check_string_size(size_t bytes);
// Throws LimitError unless `bytes` more would fit in the render's memory. Call before a big build.
void check_memory(size_t bytes);

// Bytes one string/list/dict counted against the render that created (or grew) it, given back
// when it is destroyed within that render.
class Charge {
 public:
  Charge() = default;
  Charge(const Charge&) = delete;
  Charge& operator=(const Charge&) = delete;
  ~Charge() {
    if (bytes_)
      if (Budget* b = Budget::current(); b && b->id() == owner_) b->release(bytes_);
  }
  void add(size_t n) {
    Budget* b = Budget::current();
    if (!b) return;
    if (bytes_ && owner_ != b->id()) return;  // grown by a later render: not counted
    b->charge(n);
    owner_ = b->id();
    bytes_ += n;
  }

 private:
  uint64_t owner_ = 0;
  size_t bytes_ = 0;
};

// One level of recursion (statement, expression, macro call, nested value); throws LimitError
// past max_depth, so no template or value can overflow the stack.
class DepthGuard {
 public:
  DepthGuard();
  ~DepthGuard();
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
};

std::string mib(size_t bytes);  // "64 MiB", for messages

}  // namespace camelid::jinja
