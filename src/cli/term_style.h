#pragma once
// Colours for interactive output: only when the stream is a terminal, TERM is not "dumb" and
// NO_COLOR is unset or empty (no-color.org).
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace camelid::cli {

inline bool use_colour(int fd) {
  const char* no = std::getenv("NO_COLOR");
  if (no && *no) return false;
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  return ::isatty(fd) != 0;
}

struct TermStyle {
  bool on = false;
  const char* dim() const { return on ? "\x1b[2m" : ""; }
  const char* reply() const { return on ? "\x1b[0m" : ""; }
  const char* warn() const { return on ? "\x1b[33m" : ""; }
  const char* reset() const { return on ? "\x1b[0m" : ""; }
};

}  // namespace camelid::cli
