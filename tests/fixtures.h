#pragma once
// Where the shared conformance fixtures live: $CAMELID_FIXTURES, else ../shared/fixtures
// relative to the source tree. Tests read them in place and never copy them.
#include <string>

namespace camelid::test {
std::string fixtures_dir();
std::string fixture(const std::string& rel);  // fixtures_dir() + "/" + rel
std::string camelid_binary();                 // path of the built `camelid` command
}  // namespace camelid::test
