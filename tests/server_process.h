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
    kill(pid_, SIGTERM);
    int st;
    waitpid(pid_, &st, 0);
    if (out_) fclose(out_);
  }
  int port() const { return port_; }
  bool alive() const { return waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  FILE* out_ = nullptr;
};

}  // namespace camelid::test
