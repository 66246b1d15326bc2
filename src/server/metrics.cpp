#include "server/metrics.h"

#include <cstdio>

namespace camelid {

namespace {
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}
}  // namespace

void ServerMetrics::Histogram::observe(double v) {
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (v <= kBounds[i]) {
      ++counts[i];
      break;
    }
  ++count;
  sum += v;
}

void ServerMetrics::Histogram::render(std::string& out, const char* name, const char* help) const {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
  long cum = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cum += counts[i];
    out += std::string(name) + "_bucket{le=\"" + num(kBounds[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(count) + "\n";
  out += std::string(name) + "_sum " + num(sum) + "\n" + name + "_count " + std::to_string(count) + "\n";
}

void ServerMetrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++requests_[{endpoint, status}];
}

void ServerMetrics::generation(int prompt_tokens, int completion_tokens, double ttft_s, double latency_s) {
  std::lock_guard<std::mutex> lk(mu_);
  prompt_tokens_ += prompt_tokens;
  completion_tokens_ += completion_tokens;
  if (ttft_s >= 0) ttft_.observe(ttft_s);
  latency_.observe(latency_s);
}

std::string ServerMetrics::render(const EngineStats& e, int slots) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string o;
  o += "# HELP camelid_requests_total HTTP requests answered, by endpoint and status.\n"
       "# TYPE camelid_requests_total counter\n";
  for (auto& [k, v] : requests_)
    o += "camelid_requests_total{endpoint=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
         std::to_string(v) + "\n";
  auto scalar = [&](const char* name, const char* type, const char* help, double v) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num(v) + "\n";
  };
  scalar("camelid_prompt_tokens_total", "counter", "Prompt tokens of finished generations.", double(prompt_tokens_));
  scalar("camelid_completion_tokens_total", "counter", "Generated tokens.", double(completion_tokens_));
  scalar("camelid_requests_queued", "gauge", "Generations waiting for a slot.", e.queued);
  scalar("camelid_requests_active", "gauge", "Slots decoding a generation.", e.active);
  scalar("camelid_slots", "gauge", "Sequences decoded together (--parallel).", slots);
  scalar("camelid_kv_cells_used", "gauge", "KV cache positions held by active generations.", double(e.kv_cells_used));
  scalar("camelid_kv_cells_total", "gauge", "KV cache positions the block budget allows.", double(e.kv_cells_total));
  scalar("camelid_kv_bytes", "gauge", "Bytes of KV cache blocks allocated now (the pool grows on demand).",
         double(e.kv_bytes));
  scalar("camelid_kv_budget_bytes", "gauge", "Most bytes the KV cache may allocate (--kv-budget; a draft model's cache included).",
         double(e.kv_budget_bytes));
  scalar("camelid_kv_blocks_cached", "gauge", "Prefix-cache blocks no generation holds (evicted first).",
         double(e.kv_blocks_cached));
  scalar("camelid_decode_steps_total", "counter", "Batched decode steps.", double(e.steps));
  ttft_.render(o, "camelid_time_to_first_token_seconds", "Time from request to its first generated token.");
  latency_.render(o, "camelid_request_duration_seconds", "Time from request to its last generated token.");
  return o;
}

}  // namespace camelid
