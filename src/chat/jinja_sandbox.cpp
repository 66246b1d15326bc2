#include "chat/jinja_sandbox.h"

#include <atomic>

namespace camelid::jinja {

namespace {
std::atomic<uint64_t> next_budget_id{1};
thread_local Budget* current_budget = nullptr;
thread_local int depth = 0;  // of DepthGuards on this thread
}  // namespace

Budget::Budget(const Limits& lim) : lim_(lim), id_(next_budget_id++), outer_(current_budget) { current_budget = this; }
Budget::~Budget() { current_budget = outer_; }
Budget* Budget::current() { return current_budget; }

void Budget::charge(size_t bytes) {
  if (bytes > lim_.max_memory - live_)  // live_ <= max_memory always
    throw LimitError("render needs more than " + mib(lim_.max_memory) + " of memory");
  live_ += bytes;
  if (live_ > peak_) peak_ = live_;
}

void Budget::out_of_steps() const {
  throw LimitError("render took more than " + std::to_string(lim_.max_steps) + " steps");
}

const Limits& active_limits() {
  static const Limits defaults;
  const Budget* b = Budget::current();
  return b ? b->limits() : defaults;
}

void check_string_size(size_t bytes) {
  const size_t max = active_limits().max_string;
  if (bytes > max) throw LimitError("string longer than " + mib(max));
}

void check_memory(size_t bytes) {
  const Budget* b = Budget::current();
  if (b && bytes > b->limits().max_memory - b->live_bytes())
    throw LimitError("render needs more than " + mib(b->limits().max_memory) + " of memory");
}

DepthGuard::DepthGuard() {
  if (++depth > active_limits().max_depth) {
    --depth;
    throw LimitError("recursion deeper than " + std::to_string(active_limits().max_depth) + " levels");
  }
}
DepthGuard::~DepthGuard() { --depth; }

std::string mib(size_t bytes) {
  return bytes % (size_t(1) << 20) == 0 ? std::to_string(bytes >> 20) + " MiB" : std::to_string(bytes) + " bytes";
}

}  // namespace camelid::jinja
