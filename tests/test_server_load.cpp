// Load on `camelid serve`: 64 concurrent streaming clients, twice, with zero errors and the same
// text each request gets when it runs alone (seeded sampling; batching never changes a token).
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

ServerProcess& load_server() {
  static ServerProcess s("-m '" + fixture("models/tiny-llama2") + "' --parallel 16 --ctx 256 --threads 2");
  return s;
}

json request(int i) {
  return {{"messages", {{{"role", "user"}, {"content", "Story number " + std::to_string(i) + ", please."}}}},
          {"max_tokens", 16}, {"temperature", 0.9}, {"seed", 1000 + i}, {"stream", true}};
}

// The streamed text of one request, or "ERROR: ..." for anything but a clean, complete stream.
std::string run_stream(int i) {
  httplib::Client c("127.0.0.1", load_server().port());
  c.set_read_timeout(60, 0);
  auto r = c.Post("/v1/chat/completions", request(i).dump(), "application/json");
  if (!r) return "ERROR: no response (" + httplib::to_string(r.error()) + ")";
  if (r->status != 200) return "ERROR: status " + std::to_string(r->status) + " " + r->body;
  std::string text;
  bool done = false;
  for (size_t pos = 0; (pos = r->body.find("data: ", pos)) != std::string::npos;) {
    const size_t end = r->body.find("\n\n", pos);
    const std::string data = r->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    const json j = json::parse(data);
    const json& delta = j["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  return done ? text : "ERROR: stream ended without [DONE]";
}

}  // namespace

TEST(ServerLoad, SixtyFourConcurrentStreamsTwiceMatchSequentialRuns) {
  constexpr int kClients = 64;
  std::vector<std::string> alone(kClients);
  for (int i = 0; i < kClients; ++i) {
    alone[i] = run_stream(i);
    ASSERT_EQ(alone[i].rfind("ERROR", 0), std::string::npos) << alone[i];
  }
  for (int round = 0; round < 2; ++round) {
    std::vector<std::string> got(kClients);
    std::vector<std::thread> ts;
    for (int i = 0; i < kClients; ++i) ts.emplace_back([&, i] { got[i] = run_stream(i); });
    for (auto& t : ts) t.join();
    int errors = 0;
    for (int i = 0; i < kClients; ++i) {
      errors += got[i].rfind("ERROR", 0) == 0;
      EXPECT_EQ(got[i], alone[i]) << "round " << round << " request " << i;
    }
    EXPECT_EQ(errors, 0) << "round " << round;
  }
  EXPECT_TRUE(load_server().alive());
}
