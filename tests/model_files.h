#pragma once
// Helpers for the model-file tests: a temp dir, small random checkpoints whose tensors a test can
// alter before writing them, and a check that an Error names what it should.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "fixtures.h"
#include "model/random_model.h"
#include "model/safetensors.h"

namespace camelid::test {

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("camelid-hostile-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& f) const { return (path_ / f).string(); }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;
};

// Runs f, which must throw camelid::Error whose message contains every part.
inline void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning '" << *parts.begin() << "'";
  } catch (const Error& e) {
    for (auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "  (missing '" << p << "')";
  }
}

// The lines of `text` that are JSON objects.
inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
  return out;
}
inline std::vector<nlohmann::json> json_lines_of_file(const std::string& path) { return json_lines(read_file(path)); }

inline void spit(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A 2-layer model with 2 kv heads: vocab 32, dim 16, hidden 24, 4 heads of 4.
inline RandomModelSpec small_spec(DType dt = DType::F32, bool tied = false) {
  RandomModelSpec s;
  ModelConfig& c = s.config;
  c.vocab_size = 32, c.dim = 16, c.hidden_dim = 24, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
  c.head_dim = 4, c.max_seq_len = 64, c.bos_id = 1, c.eos_ids = {2}, c.tied_embeddings = tied;
  s.dtype = dt;
  return s;
}

inline SafetensorsOut* find_tensor(std::vector<SafetensorsOut>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

// Stores v as element i of t, in t's dtype.
inline void set_element(SafetensorsOut& t, size_t i, float v) {
  if (t.dtype == DType::F32) {
    std::memcpy(&t.bytes[i * 4], &v, 4);
  } else {
    const uint16_t h = t.dtype == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
    std::memcpy(&t.bytes[i * 2], &h, 2);
  }
}

// A safetensors file from a header JSON text (no padding added) and a data section.
inline std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return s + header + data;
}

}  // namespace camelid::test
