#pragma once
// What one HTTP client may cost the server (see http_guard.h). Defaults suit a server on a LAN;
// `camelid serve --max-connections/--timeout/--max-body-mb` change them.
#include <cstddef>

namespace camelid {

struct HttpLimits {
  int max_connections = 512;       // served at once; past this only /health is answered (503 else)
  int health_reserve = 32;         // extra connections that may still ask /health
  size_t max_head_bytes = 64 << 10;
  int max_header_lines = 100;
  size_t max_body_bytes = 8 << 20;   // after Content-Encoding is undone (Llama 3.1's 128K context is ~0.5 MB of text)
  size_t max_bodies_in_flight = size_t(512) << 20;  // all bodies in memory at once; past it: 503
  int head_timeout_ms = 10000;     // the whole head, from its first byte (slowloris)
  int body_timeout_ms = 60000;     // the whole body
  int idle_timeout_ms = 5000;      // keep-alive wait for the next request
  int write_timeout_ms = 30000;    // a client that stops reading
  int max_requests_per_connection = 1000;
  int listen_backlog = 1024;
};

}  // namespace camelid
