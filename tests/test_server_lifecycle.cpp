// `camelid serve` when clients leave and when it is told to stop: abandoned requests give their
// slot back at once, SIGTERM ends the process within seconds whatever is in flight, and a chat
// template that cannot be used stops the server at start with one line.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "fixtures.h"
#include "raw_http.h"
#include "server_process.h"
#include "sanitizer_slowdown.h"

using namespace camelid::test;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

// A random model big enough that 2,000 tokens take tens of seconds (~14 ms a token on 2 cores),
// with the Llama 2 tokenizer linked in from the fixtures.
const std::string& slow_model() {
  struct Dir {
    std::string path = (fs::temp_directory_path() / ("camelid_slow_" + std::to_string(::getpid()))).string();
    Dir() {
      fs::remove_all(path);  // a stale one from a process that had this pid
      auto r = run_camelid("gen-random -o " + q(path) +
                           " --preset small --vocab 32000 --dim 512 --hidden 1376 --layers 8 --heads 8 --kv-heads 8"
                           " --dtype bf16 --max-pos 4096");
      EXPECT_EQ(r.status, 0) << r.out;
      for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
        fs::create_symlink(fixture(std::string("models/tiny-llama2/") + f), path + "/" + f);
    }
    ~Dir() { fs::remove_all(path); }
  };
  static const Dir dir;
  return dir.path;
}

std::string post_request(const std::string& path, const json& body) {
  const std::string b = body.dump();
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(b.size()) + "\r\n\r\n" + b;
}

json long_completion(bool stream) {
  return {{"prompt", "Once upon a time"}, {"max_tokens", 2000}, {"temperature", 0}, {"stream", stream}};
}

json health(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  auto r = c.Get("/health");
  return r && r->status == 200 ? json::parse(r->body) : json();
}

}  // namespace

TEST(ServerLifecycle, AnAbandonedNonStreamingRequestFreesItsSlotAtOnce) {
  ServerProcess s("-m " + q(slow_model()) + " --parallel 1 --ctx 2048 --threads 2");
  {
    RawConn c(s.port());
    c.send(post_request("/v1/completions", long_completion(false)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_EQ(health(s.port()).value("requests_active", -1), 1) << "the request should be generating";
  }  // the client hangs up
  const auto t0 = Clock::now();
  while (seconds_since(t0) < 5 && health(s.port()).value("requests_active", -1) != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_LT(seconds_since(t0), 2.0) << "slot still busy after the client left";  // it would take ~30 s
  EXPECT_EQ(health(s.port()).value("requests_active", -1), 0);
}

TEST(ServerLifecycle, SigtermExitsWithinSecondsWhateverIsInFlight) {
  ServerProcess s("-m " + q(slow_model()) + " --parallel 4 --ctx 2048 --threads 2");
  std::vector<std::unique_ptr<RawConn>> clients;
  for (int i = 0; i < 12; ++i) {  // 4 generating, 8 queued; some streams, some not; none reads
    clients.push_back(std::make_unique<RawConn>(s.port()));
    clients.back()->send(post_request("/v1/completions", long_completion(i % 2 == 0)));
  }
  RawConn idle(s.port());  // a keep-alive connection with nothing to say
  RawConn slow(s.port());  // a head that never ends
  slow.send("GET /health HTTP/1.1\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_EQ(health(s.port()).value("requests_active", -1), 4);
  const auto t0 = Clock::now();
  EXPECT_TRUE(s.terminate_within(5.0));
  EXPECT_LT(seconds_since(t0), 4.0);
}

// tiny-llama3 with a chat template of the test's own, in a temp directory.
std::string model_with_template(const std::string& name, const std::string& tmpl) {
  const std::string d = (fs::temp_directory_path() / ("camelid_" + name + "_" + std::to_string(::getpid()))).string();
  fs::remove_all(d);
  fs::create_directories(d);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
    fs::create_symlink(fixture(std::string("models/tiny-llama3/") + f), d + "/" + f);
  json cfg = json::parse(std::ifstream(fixture("models/tiny-llama3/tokenizer_config.json")));
  cfg["chat_template"] = tmpl;
  std::ofstream(d + "/tokenizer_config.json") << cfg.dump();
  return d;
}

TEST(ServerLifecycle, ATemplateThatCannotParseStopsServeWithOneLine) {
  const std::string d = model_with_template("badtmpl", "{% for m in messages %}{{ m.content }");  // unterminated
  auto r = run_camelid("serve -m " + q(d) + " --port 0", true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  fs::remove_all(d);
}

TEST(ServerLifecycle, TemplatesThatFailPerRequestGetAnErrorAndServingGoesOn) {
  // A hostile template: endless work for one role, a refusal for another, fine otherwise.
  const std::string d = model_with_template(
      "looptmpl",
      "{% for m in messages %}{% if m.role == 'system' %}{% for i in range(100000) %}{% for j in range(100000) %}"
      "{% endfor %}{% endfor %}{% elif m.role == 'assistant' %}{{ raise_exception('no assistant turns') }}"
      "{% else %}{{ m.content }}{% endif %}{% endfor %}");
  ServerProcess s("-m " + q(d) + " --ctx 128 --threads 2");
  auto chat = [&](const std::string& role) {
    RawConn c(s.port());
    c.send(post_request("/v1/chat/completions",
                        {{"messages", {{{"role", role}, {"content", "hi"}}}}, {"max_tokens", 2}}));
    return c.read_response(int(20000 * camelid::testing_support::kSanitizerSlowdown));  // within the bound below
  };
  const auto t0 = Clock::now();
  std::string r = chat("system");
  EXPECT_EQ(status_of(r), 500) << r;
  EXPECT_NE(r.find("steps"), std::string::npos) << r;
  EXPECT_LT(seconds_since(t0), 10.0 * camelid::testing_support::kSanitizerSlowdown);
  r = chat("assistant");
  EXPECT_EQ(status_of(r), 400) << r;
  EXPECT_NE(r.find("no assistant turns"), std::string::npos) << r;
  EXPECT_EQ(status_of(chat("user")), 200);
  EXPECT_TRUE(s.alive());
  fs::remove_all(d);
}
