#pragma once
// Starts `camelid serve` on a free loopback port for a test and stops it afterwards.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.h"

namespace camelid::test {

class ServerProcess {
 public:
  explicit ServerProcess(const std::string& args) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      const std::string cmd = "exec '" + camelid_binary() + "' serve --port 0 " + args;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
      _exit(127);
    }
    close(fds[1]);
    // The server prints "listening on http://HOST:PORT" once it accepts connections.
    FILE* out = fdopen(fds[0], "r");
    char line[512];
    while (fgets(line, sizeof line, out)) {
      std::string s(line);
      auto at = s.find("listening on http://");
      if (at != std::string::npos) {
        auto colon = s.rfind(':');
        port_ = std::stoi(s.substr(colon + 1));
        break;
      }
    }
    out_ = out;
    if (port_ <= 0) throw std::runtime_error("camelid serve did not start: " + args);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st;
      waitpid(pid_, &st, 0);
    }
    if (out_) fclose(out_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Resident memory of the server process in MiB (from /proc).
  long rss_mib() const {
    FILE* f = fopen(("/proc/" + std::to_string(pid_) + "/status").c_str(), "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb / 1024;
  }
  // Sends SIGTERM and waits up to `seconds`; true if it exited in time (else it is killed).
  bool terminate_within(double seconds) {
    if (pid_ <= 0) return true;
    kill(pid_, SIGTERM);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int st;
    while (std::chrono::steady_clock::now() < end) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) return pid_ = -1, true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return false;
  }
  bool alive() const { return waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  FILE* out_ = nullptr;
};

}  // namespace camelid::test
