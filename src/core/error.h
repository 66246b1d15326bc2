#pragma once
// One exception type for everything the user can get wrong (files, fields, values). Front ends
// catch it and print what() as a single line; messages name the file/field/value at fault.
#include <stdexcept>
#include <string>
#include <string_view>
#include <cstdio>
#include <type_traits>

namespace camelid {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// to_str keeps fail("field ", name, " = ", 42) readable without iostreams.
template <typename T>
std::string to_str(const T& v) {
  if constexpr (std::is_same_v<T, char>) {
    return std::string(1, v);
  } else if constexpr (std::is_floating_point_v<T>) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", double(v));
    return buf;
  } else if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(v);
  } else {
    return std::string(v);
  }
}

template <typename... Args>
[[noreturn]] void fail(Args&&... parts) {
  std::string msg;
  ((msg += to_str(parts)), ...);
  throw Error(msg);
}

// A name read from a file, for an error message: printable ASCII ('?' for other bytes), at most
// 200 characters (a hostile name must not flood a log or a terminal).
inline std::string printable_name(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return s.size() > 200 ? out + "..." : out;
}

}  // namespace camelid
