#pragma once
// Counters and histograms of the server, shown at /metrics in Prometheus' text format (0.0.4).
#include <array>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "runtime/engine.h"

namespace camelid {

class ServerMetrics {
 public:
  // One answered request: its route and HTTP status.
  void request(const std::string& endpoint, int status);
  // One finished generation: tokens, time to first token (< 0: none came) and total latency.
  void generation(int prompt_tokens, int completion_tokens, double ttft_s, double latency_s);
  // The whole exposition; engine state (queue, slots, KV) is read at the time of the scrape.
  std::string render(const EngineStats& engine, int slots) const;

 private:
  struct Histogram {
    static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    std::array<long, kBounds.size()> counts{};  // per bucket (made cumulative when rendered)
    long count = 0;
    double sum = 0;
    void observe(double v);
    void render(std::string& out, const char* name, const char* help) const;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, long> requests_;
  long prompt_tokens_ = 0, completion_tokens_ = 0;
  Histogram ttft_, latency_;
};

}  // namespace camelid
