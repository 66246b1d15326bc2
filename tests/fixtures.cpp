#include "fixtures.h"

#include <cstdlib>

namespace camelid::test {
std::string fixtures_dir() {
  const char* env = std::getenv("CAMELID_FIXTURES");
  return env && *env ? env : CAMELID_FIXTURES_DEFAULT;
}
std::string fixture(const std::string& rel) { return fixtures_dir() + "/" + rel; }
std::string camelid_binary() { return CAMELID_BINARY; }
}  // namespace camelid::test
