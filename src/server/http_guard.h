#pragma once
// cpp-httplib (Debian 12 ships 0.11) with the limits a server exposed to strangers needs and that
// version lacks: it reads a request head of any size at any pace, inflates gzip bodies without
// bound, queues connections behind a fixed thread pool (a few slow clients starve everyone,
// /health included) and listens with a backlog of 5. httplib still parses requests, routes them
// and writes responses; this layer owns the sockets:
// - one thread per connection up to a cap; past it, an immediate 503 (no queueing behind slow
//   clients), and a small reserve of connections that may only ask /health;
// - the request head must arrive within a deadline and a size/line budget (408 / 431), the body
//   within its own deadline and byte budget; writes give up on a client that stops reading;
// - a real listen backlog; client_gone() lets a handler notice that its client has left;
// - stop() ends every connection within about a second.
#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <mutex>

#include "server/http_limits.h"

namespace camelid {


class GuardedHttpServer : public httplib::Server {
 public:
  explicit GuardedHttpServer(const HttpLimits& lim);
  ~GuardedHttpServer() override;

  // Binds host:port (0: any free port) with the configured backlog; returns the port or -1.
  int bind(const std::string& host, int port);
  void run();   // serves until stop()
  void stop();  // safe from any thread, before or during run()

  const HttpLimits& limits() const { return lim_; }
  bool stopping() const { return stopping_; }
  int connections() const { return conns_; }

  // For the handler running on the calling thread (false/no-op elsewhere):
  static bool client_gone();           // the client closed or reset its connection
  static bool over_limit();            // this connection came in past max_connections
  static void close_after_response();  // e.g. after a 413: the rest of the body stays unread
  static int body_failure_status();    // 408/413 when the body read stopped on a limit, else 0

 private:
  bool process_and_close_socket(socket_t sock) override;

  HttpLimits lim_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> conns_{0};
  int listen_fd_ = -1;
  std::mutex run_mu_;
  bool started_ = false, finished_ = false;  // under run_mu_
};

}  // namespace camelid
