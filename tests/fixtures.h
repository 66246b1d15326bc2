#pragma once
// Where the shared conformance fixtures live: $CAMELID_FIXTURES, else ../shared/fixtures
// relative to the source tree. Tests read them in place and never copy them.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace camelid::test {
std::string fixtures_dir();
std::string fixture(const std::string& rel);  // fixtures_dir() + "/" + rel
std::string camelid_binary();                 // path of the built `camelid` command
// This test process's own scratch directory (<tmp>/camelid_test_<pid>, emptied when first asked
// for, since a pid can repeat): tests put their temporary files there, and it is removed when the
// process exits, so test runs leave nothing behind in /tmp.
std::string scratch_dir();
// A whole file's bytes; throws std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::string& path);
nlohmann::json read_json(const std::string& path);  // read_file, parsed
// Text for a failure message: as a JSON string (escapes visible), cut to 80 bytes.
// n copies of s, for long and deeply nested inputs.
inline std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

inline std::string show(const std::string& s) { return nlohmann::json(s).dump().substr(0, 80); }
// Seconds from t0 to now, on the steady clock.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace camelid::test
