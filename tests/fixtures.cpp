#include "fixtures.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace camelid::test {
std::string fixtures_dir() {
  const char* env = std::getenv("CAMELID_FIXTURES");
  return env && *env ? env : CAMELID_FIXTURES_DEFAULT;
}
std::string fixture(const std::string& rel) { return fixtures_dir() + "/" + rel; }
std::string camelid_binary() { return CAMELID_BINARY; }
std::string scratch_dir() {
  struct Scratch {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("camelid_test_" + std::to_string(::getpid()));
    Scratch() {
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
    }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static Scratch s;
  return s.dir.string();
}
std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(f), {}};
}
nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }
}  // namespace camelid::test
