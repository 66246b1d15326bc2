#include "cli/line_reader.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/interrupt.h"

#ifdef CAMELID_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace camelid::cli {

namespace {
constexpr size_t kMaxLine = size_t(16) << 20;  // a pipe without newlines must not grow us forever

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

std::string LineReader::history_path() {
  namespace fs = std::filesystem;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return (fs::path(x) / "camelid" / "history").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".camelid_history").string();
  return "";
}

LineReader::LineReader(bool interactive, bool colour) : interactive_(interactive), colour_(colour) {
#ifdef CAMELID_HAVE_LIBEDIT
  if (!interactive_) return;
  editline_ = true;
  rl_readline_name = "camelid";  // for ~/.editrc key bindings
  // libedit's own handler would re-send SIGINT to the whole process group; ours is enough.
  rl_catch_signals = 0;
  using_history();
  stifle_history(1000);
  history_ = history_path();
  if (!history_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(history_).parent_path(), ec);
    read_history(history_.c_str());  // absent at first: fine
  }
#endif
}

LineReader::~LineReader() {
#ifdef CAMELID_HAVE_LIBEDIT
  if (editline_ && !history_.empty()) write_history(history_.c_str());
#endif
}

LineReader::Status LineReader::read_line(const std::string& prompt, std::string& line) {
  line.clear();
#ifdef CAMELID_HAVE_LIBEDIT
  if (editline_) {
    // \1..\2 mark the colour codes as taking no room on the line.
    // (libedit drops an escape at the very end of the prompt: the reset goes before its space.)
    std::string p = prompt;
    if (colour_ && !prompt.empty() && prompt.back() == ' ')
      p = "\1\x1b[1;32m\2" + prompt.substr(0, prompt.size() - 1) + "\1\x1b[0m\2 ";
    if (interrupt::pending()) {  // a Ctrl-C that came since the last reply
      interrupt::clear();
      return Status::Interrupted;
    }
    char* s = readline(p.c_str());
    if (!s) {
      if (interrupt::pending()) {
        interrupt::clear();
        std::fputc('\n', stdout);
        return Status::Interrupted;
      }
      return Status::Eof;
    }
    line = s;
    std::free(s);
    if (interrupt::pending()) {
      interrupt::clear();
      return Status::Interrupted;
    }
    if (!line.empty()) {
      add_history(line.c_str());
      if (!history_.empty()) write_history(history_.c_str());  // a crash or kill keeps it too
    }
    return Status::Line;
  }
#endif
  if (interactive_) {
    std::fprintf(stderr, colour_ ? "\x1b[1;32m%s\x1b[0m" : "%s", prompt.c_str());
    std::fflush(stderr);
  }
  // read(2) rather than stdio: a Ctrl-C must not lose what was read already. poll() on stdin and
  // the interrupt pipe together, so a Ctrl-C is seen whenever it came.
  while (true) {
    if (interrupt::pending()) {
      interrupt::clear();
      return Status::Interrupted;
    }
    if (const size_t nl = pending_.find('\n'); nl != std::string::npos) {
      line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return Status::Line;
    }
    if (eof_ || pending_.size() > kMaxLine) {
      if (pending_.empty()) return Status::Eof;
      line.swap(pending_);  // a last line without its newline
      pending_.clear();
      return Status::Line;
    }
    pollfd fds[2] = {{0, POLLIN, 0}, {interrupt::wake_fd(), POLLIN, 0}};
    if (::poll(fds, fds[1].fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) eof_ = true;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) continue;  // woken by Ctrl-C, or EINTR
    char buf[4096];
    const ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) eof_ = true;
    else pending_.append(buf, size_t(n));
  }
}

LineReader::Status LineReader::read_message(std::string& text) {
  text.clear();
  std::string line;
  Status st = read_line("> ", line);
  if (st != Status::Line) return st;
  if (line.rfind("\"\"\"", 0) == 0) {  // a block: everything up to a line ending in """
    std::string body = line.substr(3);
    bool closed = false;
    if (ends_with(body, "\"\"\"")) {
      body.resize(body.size() - 3);
      closed = true;
    }
    text = body;
    bool first = body.empty();
    while (!closed) {
      st = read_line("... ", line);
      if (st == Status::Interrupted) return st;
      if (st == Status::Eof) break;
      if (ends_with(line, "\"\"\"")) {
        line.resize(line.size() - 3);
        closed = true;
        if (line.empty()) break;
      }
      text += (first ? "" : "\n") + line;
      first = false;
    }
    return Status::Line;
  }
  while (!line.empty() && line.back() == '\\') {  // continued on the next line
    line.pop_back();
    text += line + "\n";
    st = read_line("... ", line);
    if (st == Status::Interrupted) return st;
    if (st == Status::Eof) {
      line.clear();
      break;
    }
  }
  text += line;
  return Status::Line;
}

}  // namespace camelid::cli
