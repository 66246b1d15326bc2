// Load generator for `camelid serve` (not a Google Benchmark: it drives another process).
//   bench_server_load --port P [--clients 64] [--requests 2000] [--max-tokens 16] [--no-stream]
//                     [--pid SERVER_PID] [--path /v1/chat/completions] [--greedy] [--ignore-eos]
//                     [--fields '{"top_k": 40}']
// N clients each run requests back to back over fresh connections until R requests are done, and
// the program prints one JSON line: errors, latency percentiles (whole request, and time to the
// first streamed token), requests/s, streamed events/s, tokens/s and the gaps between a stream's
// tokens (streamed events with text, as a client sees them), and the server's RSS (from /proc) at
// the start, its maximum (sampled every 100 ms) and at the end. Any OpenAI-compatible server
// works (llama.cpp's llama-server too: --ignore-eos sends its `ignore_eos`). Requests sample at
// temperature 0.8 (0 with --greedy); --fields adds or replaces request fields (sampling settings).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../tests/raw_http.h"

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

long rss_mib(int pid) {
  if (pid <= 0) return -1;
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb / 1024;
}

struct Result {
  bool ok = false;
  double total_ms = 0, first_ms = 0;
  int events = 0;
  std::vector<double> token_ms;  // arrival of each streamed event that carries text
};

// A streamed event with text: `"text":"x` (completions) or `"content":"x` (chat), not empty.
bool has_text(const std::string& event) {
  for (const char* key : {"\"text\":\"", "\"content\":\""}) {
    const size_t p = event.find(key);
    if (p != std::string::npos && p + std::strlen(key) < event.size() && event[p + std::strlen(key)] != '"') return true;
  }
  return false;
}

Result one_request(int port, const std::string& path, const std::string& body, bool stream) {
  Result r;
  const auto t0 = Clock::now();
  camelid::test::RawConn c(port);
  const std::string req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n" +
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!c.connected() || !c.send(req)) return r;
  std::string got;
  size_t scanned = 0;  // events before this offset have been timed
  for (;;) {
    const std::string part = c.read_some(120000);  // until the server closes (Connection: close)
    if (part.empty()) break;
    got += part;
    const double now = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    for (size_t p, e; (p = got.find("data: ", scanned)) != std::string::npos && (e = got.find("\n\n", p)) != std::string::npos;
         scanned = e + 2)
      if (has_text(got.substr(p, e - p))) r.token_ms.push_back(now);
    // The first token: chat streams open with a role-only event, completions do not.
    const int wanted = path == "/v1/chat/completions" ? 2 : 1;
    int seen = 0;
    for (size_t p = 0; r.first_ms == 0 && (p = got.find("data: ", p)) != std::string::npos; p += 6)
      if (++seen == wanted) r.first_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
  r.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (camelid::test::status_of(got) != 200) return r;
  if (stream) {
    for (size_t p = 0; (p = got.find("data: ", p)) != std::string::npos; p += 6) ++r.events;
    r.ok = got.find("data: [DONE]") != std::string::npos;
  } else {
    r.ok = got.find("\"finish_reason\"") != std::string::npos;
    r.first_ms = r.total_ms;
  }
  return r;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, clients = 64, requests = 2000, max_tokens = 16, pid = 0;
  bool stream = true, greedy = false, ignore_eos = false;
  std::string path = "/v1/chat/completions";
  json fields = json::object();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--port") port = std::stoi(next());
    else if (a == "--clients") clients = std::stoi(next());
    else if (a == "--requests") requests = std::stoi(next());
    else if (a == "--max-tokens") max_tokens = std::stoi(next());
    else if (a == "--pid") pid = std::stoi(next());
    else if (a == "--path") path = next();
    else if (a == "--no-stream") stream = false;
    else if (a == "--greedy") greedy = true;
    else if (a == "--ignore-eos") ignore_eos = true;
    else if (a == "--fields") fields = json::parse(next(), nullptr, false);
    else {
      std::fprintf(stderr, "usage: bench_server_load --port P [--clients N] [--requests R] [--max-tokens T] "
                           "[--no-stream] [--pid PID] [--path P] [--greedy] [--ignore-eos] [--fields JSON]\n");
      return 2;
    }
  }
  if (port <= 0) return std::fprintf(stderr, "bench_server_load: --port is required\n"), 2;
  if (!fields.is_object()) return std::fprintf(stderr, "bench_server_load: --fields must be a JSON object\n"), 2;

  std::atomic<int> issued{0};
  std::mutex mu;
  std::vector<Result> results;
  std::atomic<bool> done{false};
  const long rss_start = rss_mib(pid);
  std::atomic<long> rss_max{rss_start};
  std::thread sampler([&] {
    while (!done) {
      rss_max = std::max(rss_max.load(), rss_mib(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c)
    ts.emplace_back([&] {
      for (int i; (i = issued++) < requests;) {
        json body = {{"max_tokens", max_tokens}, {"temperature", greedy ? 0.0 : 0.8}, {"seed", i}, {"stream", stream}};
        if (ignore_eos) body["ignore_eos"] = true;
        body.update(fields);
        if (path == "/v1/completions")
          body["prompt"] = "Request " + std::to_string(i) + ": once upon a time";
        else
          body["messages"] = {{{"role", "user"}, {"content", "Request " + std::to_string(i) + ": tell me a story."}}};
        Result r = one_request(port, path, body.dump(), stream);
        std::lock_guard<std::mutex> lk(mu);
        results.push_back(r);
      }
    });
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  done = true;
  sampler.join();

  std::vector<double> total, first, gaps;
  int errors = 0;
  long events = 0, tokens = 0;
  for (auto& r : results) {
    if (!r.ok) {
      ++errors;
      continue;
    }
    total.push_back(r.total_ms);
    first.push_back(r.first_ms);
    events += r.events;
    tokens += long(r.token_ms.size());
    for (size_t k = 1; k < r.token_ms.size(); ++k) gaps.push_back(r.token_ms[k] - r.token_ms[k - 1]);
  }
  json out = {{"clients", clients}, {"requests", requests}, {"errors", errors}, {"stream", stream},
              {"seconds", secs}, {"requests_per_s", double(results.size()) / secs},
              {"events_per_s", double(events) / secs}, {"tokens", tokens}, {"tokens_per_s", double(tokens) / secs},
              {"inter_token_ms", {{"p50", pct(gaps, 50)}, {"p99", pct(gaps, 99)}, {"max", pct(gaps, 100)}}},
              {"latency_ms", {{"p50", pct(total, 50)}, {"p99", pct(total, 99)}, {"max", pct(total, 100)}}},
              {"first_token_ms", {{"p50", pct(first, 50)}, {"p99", pct(first, 99)}}},
              {"rss_mib", {{"start", rss_start}, {"max", rss_max.load()}, {"end", rss_mib(pid)}}}};
  std::printf("%s\n", out.dump().c_str());
  return errors ? 1 : 0;
}
