// GuardedHttpServer in process, with routes of the test's own: what the guard promises whatever
// the handlers do (stalled readers dropped after the write timeout, slow heads cut off, the
// connection cap answered at once, stop() ending everything).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "raw_http.h"
#include "server/http_guard.h"

using namespace camelid;
using namespace camelid::test;
using Clock = std::chrono::steady_clock;

namespace {

struct GuardFixture : ::testing::Test {
  HttpLimits lim;
  std::unique_ptr<GuardedHttpServer> http;
  std::thread thread;
  int port = 0;
  std::atomic<bool> big_write_failed{false};
  std::atomic<double> big_failed_after{0};

  void start() {
    http = std::make_unique<GuardedHttpServer>(lim);
    http->Get("/ok", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
    // An endless stream, 64 KiB at a time, noting when a write fails.
    http->Get("/endless", [this](const httplib::Request&, httplib::Response& res) {
      const auto t0 = Clock::now();
      res.set_chunked_content_provider("text/event-stream", [this, t0](size_t, httplib::DataSink& sink) {
        const std::string chunk(1 << 16, 'x');
        if (sink.write(chunk.data(), chunk.size())) return true;
        big_failed_after = seconds_since(t0);
        big_write_failed = true;
        return false;
      });
    });
    port = http->bind("127.0.0.1", 0);
    ASSERT_GT(port, 0);
    thread = std::thread([this] { http->run(); });
  }
  void TearDown() override {
    if (http) http->stop();
    if (thread.joinable()) thread.join();
  }
  int get_ok() {
    RawConn c(port);
    c.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    return status_of(c.read_response(3000));
  }
};

}  // namespace

TEST_F(GuardFixture, AClientThatStopsReadingIsDroppedAfterTheWriteTimeout) {
  lim.write_timeout_ms = 1000;
  start();
  RawConn stalled(port, 1024);
  stalled.send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(get_ok(), 200);  // served meanwhile
  const auto t0 = Clock::now();
  while (!big_write_failed && seconds_since(t0) < 10) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(big_write_failed);
  EXPECT_LT(big_failed_after, 5.0);  // buffers fill at once; then 1 s
}

TEST_F(GuardFixture, HeadsAreBoundedInTimeSizeAndLines) {
  lim.head_timeout_ms = 500;
  lim.max_head_bytes = 4096;
  lim.max_header_lines = 10;
  start();
  {
    RawConn c(port);
    c.send("GET /ok HTTP/1.1\r\n");
    const auto t0 = Clock::now();
    EXPECT_EQ(status_of(c.read_all(3000)), 408);
    EXPECT_LT(seconds_since(t0), 2.5);
  }
  {
    RawConn c(port);
    std::string h = "GET /ok HTTP/1.1\r\n";
    for (int i = 0; i < 11; ++i) h += "X-" + std::to_string(i) + ": y\r\n";
    c.send(h + "\r\n");
    EXPECT_EQ(status_of(c.read_all(3000)), 431);
  }
  {
    RawConn c(port);
    c.send("GET /ok HTTP/1.1\r\nX: " + std::string(5000, 'a') + "\r\n\r\n");
    EXPECT_EQ(status_of(c.read_all(3000)), 431);
  }
  {  // exactly at the line limit is fine, and keep-alive carries a second request
    RawConn c(port);
    std::string h = "GET /ok HTTP/1.1\r\n";
    for (int i = 0; i < 10; ++i) h += "X-" + std::to_string(i) + ": y\r\n";
    c.send(h + "\r\n");
    EXPECT_EQ(status_of(c.read_response(3000)), 200);
    c.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_of(c.read_response(3000)), 200);
  }
}

TEST_F(GuardFixture, PastTheCapConnectionsGet503AtOnce) {
  lim.max_connections = 2;
  lim.health_reserve = 1;
  lim.head_timeout_ms = 3000;
  start();
  std::vector<std::unique_ptr<RawConn>> hold;
  for (int i = 0; i < 3; ++i) {
    hold.push_back(std::make_unique<RawConn>(port));
    hold.back()->send("GET /ok HTTP/1.1\r\n");  // never finished
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = Clock::now();
  RawConn extra(port);
  extra.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(extra.read_all(2000)), 503);
  EXPECT_LT(seconds_since(t0), 1.0);  // the held heads have 3 s
  for (int i = 0; i < 100 && http->connections() != 3; ++i)  // the 503's own count drops just after it is sent
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(http->connections(), 3);
}

TEST_F(GuardFixture, StopEndsIdleSlowAndStreamingConnectionsWithinASecond) {
  start();
  RawConn idle(port), slow(port), stream(port, 1024);
  slow.send("GET /ok HTTP/1.1\r\n");
  stream.send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = Clock::now();
  http->stop();
  thread.join();
  EXPECT_LT(seconds_since(t0), 2.0);
}
