#include "server/http_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <thread>

namespace camelid {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int ms_left(Clock::time_point deadline) {
  const auto d = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return int(std::clamp<long long>(d, 0, INT_MAX));
}

// Waits for `events` on fd until `deadline`, in slices short enough to notice a stop. On a stop,
// reads give up at once and writes get one more second (to finish the response in hand).
// Returns poll's revents, 0 on timeout or stop, -1 on error.
int wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>& stopping, bool is_write) {
  bool grace = false;
  for (;;) {
    if (stopping && !grace) {
      if (!is_write) return 0;
      deadline = std::min(deadline, Clock::now() + milliseconds(1000));
      grace = true;
    }
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, std::min(ms_left(deadline), 100));
    if (r > 0) return p.revents;
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return 0;
  }
}

// A complete response written straight to the socket, for clients we will not parse further.
void send_canned(int fd, int status, const char* reason, const char* message) {
  const std::string body = std::string(R"({"error":{"message":")") + message +
                           R"(","type":"invalid_request_error","param":null,"code":null}})";
  std::string msg = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\n" +
                    (status == 503 ? "Retry-After: 1\r\n" : "") + "Content-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body;
  (void)::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Closing a socket with unread bytes makes the kernel send a reset, which can destroy the
// response still in flight to the client; so we stop writing first and read what is left for a
// moment before closing.
void close_gracefully(int fd, int linger_ms) {
  ::shutdown(fd, SHUT_WR);
  const auto deadline = Clock::now() + milliseconds(linger_ms);
  char sink[4096];
  for (size_t drained = 0; drained < (256u << 10);) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) break;
    const ssize_t r = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r <= 0) break;
    drained += size_t(r);
  }
  ::close(fd);
}

void address_of(int fd, bool local, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ip.clear();
  port = 0;
  if ((local ? ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len)
             : ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)) != 0)
    return;
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    port = ntohs(s->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    port = ntohs(s->sin6_port);
  }
  ip = buf;
}

// One connection's socket as httplib sees it. httplib reads a request head one byte at a time
// through read(), so every head byte passes the limits here before httplib stores it.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(int fd, const HttpLimits& lim, const std::atomic<bool>& stopping, bool over_limit)
      : fd_(fd), lim_(lim), stopping_(stopping), over_limit_(over_limit) {}

  bool is_readable() const override {
    return pos_ < len_ || wait_fd(fd_, POLLIN, deadline_, stopping_, false) > 0;
  }
  bool is_writable() const override {
    return !write_failed_ && wait_fd(fd_, POLLOUT, Clock::now() + milliseconds(lim_.write_timeout_ms), stopping_, true) > 0;
  }

  ssize_t read(char* out, size_t n) override {
    if (read_failed_) return -1;
    if (pos_ == len_) {
      const int r = fill();
      if (r <= 0) return r;
    }
    size_t k = std::min(n, len_ - pos_);
    if (in_head_) {
      size_t i = 0;
      while (i < k) {
        const char c = buf_[pos_ + i++];
        if (++head_bytes_ > lim_.max_head_bytes) return reject(431, "Request Header Fields Too Large", "the request head is too large");
        if (c == '\n') {
          if (line_len_ == 0 && lines_ > 0) {  // the blank line: the body starts after it
            in_head_ = false;
            deadline_ = Clock::now() + milliseconds(lim_.body_timeout_ms);
            break;
          }
          if (++lines_ > lim_.max_header_lines + 1)
            return reject(431, "Request Header Fields Too Large", "the request has too many header lines");
          line_len_ = 0;
        } else if (c != '\r') {
          ++line_len_;
        }
      }
      k = i;
    } else if ((body_bytes_ += k) > lim_.max_body_bytes + (64u << 10)) {  // slack: chunk framing
      body_failure_ = 413;
      read_failed_ = true;
      return -1;
    }
    std::memcpy(out, buf_ + pos_, k);
    pos_ += k;
    return ssize_t(k);
  }

  ssize_t write(const char* p, size_t n) override {
    if (write_failed_ || rejected_) return -1;
    const auto deadline = Clock::now() + milliseconds(lim_.write_timeout_ms);
    size_t done = 0;
    while (done < n) {
      const ssize_t r = ::send(fd_, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r > 0) {
        done += size_t(r);
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                 wait_fd(fd_, POLLOUT, deadline, stopping_, true) > 0) {
        continue;
      } else {
        write_failed_ = true;
        return -1;
      }
    }
    return ssize_t(n);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, false, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, true, ip, port); }
  socket_t socket() const override { return fd_; }

  // Waits for the first byte of the next request (or EOF, which httplib then reads).
  bool wait_request(int timeout_ms) {
    return pos_ < len_ || wait_fd(fd_, POLLIN, Clock::now() + milliseconds(timeout_ms), stopping_, false) > 0;
  }
  void begin_request() {
    in_head_ = true;
    head_bytes_ = line_len_ = body_bytes_ = 0;
    lines_ = body_failure_ = 0;
    deadline_ = Clock::now() + milliseconds(over_limit_ ? std::min(1000, lim_.head_timeout_ms) : lim_.head_timeout_ms);
  }
  bool gone() const {
    if (write_failed_) return true;
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    char c;
    const ssize_t r = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  bool over_limit() const { return over_limit_; }
  bool must_close() const { return close_ || read_failed_ || write_failed_ || rejected_; }
  void request_close() { close_ = true; }
  int body_failure() const { return body_failure_; }

 private:
  // 1: bytes buffered; 0: the client closed; -1: error, deadline, stop or a limit.
  int fill() {
    for (;;) {
      if (wait_fd(fd_, POLLIN, deadline_, stopping_, false) <= 0) {
        if (in_head_ && head_bytes_ > 0 && !stopping_)
          return reject(408, "Request Timeout", "the request head did not arrive in time");
        if (!in_head_) body_failure_ = 408;
        read_failed_ = true;
        return -1;
      }
      const ssize_t r = ::recv(fd_, buf_, sizeof buf_, MSG_DONTWAIT);
      if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (r <= 0) {
        read_failed_ = r < 0;
        return r < 0 ? -1 : 0;
      }
      pos_ = 0;
      len_ = size_t(r);
      return 1;
    }
  }
  // A head we will not parse: answer it here and make httplib's own error response a no-op.
  int reject(int status, const char* reason, const char* message) {
    send_canned(fd_, status, reason, message);
    rejected_ = read_failed_ = true;
    return -1;
  }

  int fd_;
  const HttpLimits& lim_;
  const std::atomic<bool>& stopping_;
  const bool over_limit_;
  char buf_[8192];
  size_t pos_ = 0, len_ = 0;
  bool in_head_ = true;
  size_t head_bytes_ = 0, line_len_ = 0, body_bytes_ = 0;
  int lines_ = 0, body_failure_ = 0;
  Clock::time_point deadline_ = Clock::now();
  bool read_failed_ = false, write_failed_ = false, rejected_ = false, close_ = false;
};

thread_local ConnStream* t_conn = nullptr;
thread_local bool t_overflow = false;

// A thread per connection up to `cap` (a slow client then only holds its own thread); past the
// cap the connection is handled inline on the accept thread, which answers 503 without reading.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(int cap) : cap_(cap) {}

  void enqueue(std::function<void()> fn) override {
    auto task = std::make_shared<std::function<void()>>(std::move(fn));
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (running_ < cap_) {
        ++running_;
        try {
          std::thread([this, task] {
            (*task)();
            std::lock_guard<std::mutex> lk2(mu_);
            --running_;
            cv_.notify_all();
          }).detach();
          return;
        } catch (const std::system_error&) {
          --running_;  // no thread to be had: treat as over the cap
        }
      }
    }
    t_overflow = true;
    (*task)();
    t_overflow = false;
  }

  void shutdown() override {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return running_ == 0; });
  }

 private:
  const int cap_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
};

}  // namespace

GuardedHttpServer::GuardedHttpServer(const HttpLimits& lim) : lim_(lim) {
  const int cap = lim_.max_connections + lim_.health_reserve;
  new_task_queue = [cap] { return new ConnectionThreads(cap); };
  set_payload_max_length(lim_.max_body_bytes);
  set_socket_options([this](socket_t fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = fd;  // the last socket offered is the one that binds
  });
}

GuardedHttpServer::~GuardedHttpServer() { stop(); }

int GuardedHttpServer::bind(const std::string& host, int port) {
  const int p = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  // httplib listens with a backlog of 5: a burst of clients would get connection resets.
  if (p >= 0 && listen_fd_ >= 0) ::listen(listen_fd_, lim_.listen_backlog);
  return p;
}

void GuardedHttpServer::run() {
  {
    std::lock_guard<std::mutex> lk(run_mu_);
    if (stopping_) return;
    started_ = true;
  }
  listen_after_bind();
  std::lock_guard<std::mutex> lk(run_mu_);
  finished_ = true;
}

void GuardedHttpServer::stop() {
  std::lock_guard<std::mutex> lk(run_mu_);
  stopping_ = true;
  if (!started_ || finished_) return;
  // run() may be between its check and httplib's accept loop, which stop() only ends once running.
  for (int i = 0; i < 2000 && !is_running(); ++i) std::this_thread::sleep_for(milliseconds(1));
  httplib::Server::stop();
}

bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
  const int n = ++conns_;
  struct Count {
    std::atomic<int>& c;
    ~Count() { --c; }
  } count{conns_};
  if (t_overflow || stopping_ || n > lim_.max_connections + lim_.health_reserve) {
    send_canned(sock, 503, "Service Unavailable", "the server is at its connection limit; retry shortly");
    close_gracefully(sock, 0);
    return false;
  }
  ConnStream strm(sock, lim_, stopping_, n > lim_.max_connections);
  t_conn = &strm;
  bool ok = false;
  try {
    for (int i = 0; i < lim_.max_requests_per_connection && !stopping_; ++i) {
      if (!strm.wait_request(i == 0 ? lim_.head_timeout_ms : lim_.idle_timeout_ms)) break;
      strm.begin_request();
      bool closed = false;
      const bool last = i + 1 == lim_.max_requests_per_connection || strm.over_limit();
      ok = process_request(strm, last, closed, nullptr);
      if (!ok || closed || last || strm.must_close()) break;
    }
  } catch (...) {
    ok = false;  // nothing one client sends may end the process: drop its connection
  }
  t_conn = nullptr;
  close_gracefully(sock, stopping_ ? 100 : 500);
  return ok;
}

bool GuardedHttpServer::client_gone() { return t_conn && t_conn->gone(); }
bool GuardedHttpServer::over_limit() { return t_conn && t_conn->over_limit(); }
void GuardedHttpServer::close_after_response() {
  if (t_conn) t_conn->request_close();
}
int GuardedHttpServer::body_failure_status() { return t_conn ? t_conn->body_failure() : 0; }

}  // namespace camelid
