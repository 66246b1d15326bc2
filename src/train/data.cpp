#include "train/data.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace camelid::train {

DataFormat data_format_from_name(const std::string& name) {
  if (name == "auto") return DataFormat::Auto;
  if (name == "text") return DataFormat::Text;
  if (name == "ids") return DataFormat::Ids;
  if (name == "json") return DataFormat::Json;
  fail("--data-format: unknown format '", name, "' (auto, text, ids or json)");
}

DataFormat resolve_format(const std::string& path, DataFormat fmt) {
  if (fmt != DataFormat::Auto) return fmt;
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".bin" || ext == ".u32") return DataFormat::Ids;
  if (ext == ".json") return DataFormat::Json;
  return DataFormat::Text;
}

namespace {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, not a data file");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::string s{std::istreambuf_iterator<char>(f), {}};
  if (f.bad()) fail(path, ": read error");
  return s;
}

void check_id(const std::string& path, int64_t id, size_t pos, int vocab) {
  if (id < 0 || id >= vocab)
    fail(path, ": token ", pos, " is ", id, ", outside the vocabulary (", vocab, " tokens)");
}

}  // namespace

std::vector<int> read_tokens(const std::string& path, DataFormat fmt, const Tokenizer* tok, int vocab) {
  return tokens_from_bytes(read_file(path), resolve_format(path, fmt), tok, vocab, path);
}

std::vector<int> tokens_from_bytes(const std::string& bytes, DataFormat fmt, const Tokenizer* tok, int vocab,
                                   const std::string& path) {
  std::vector<int> out;
  if (fmt == DataFormat::Ids) {
    if (bytes.size() % 4 != 0)
      fail(path, ": ", bytes.size(), " bytes is not a whole number of little-endian uint32 token ids");
    out.resize(bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) {
      const auto* b = reinterpret_cast<const unsigned char*>(bytes.data()) + 4 * i;
      const uint32_t v = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
      check_id(path, int64_t(v), i, vocab);
      out[i] = int(v);
    }
  } else if (fmt == DataFormat::Json) {
    const nlohmann::json j = parse_json(bytes, path);
    if (!j.is_array()) fail(path, ": expected a JSON array of token ids");
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_number_integer()) fail(path, ": element ", i, " is not an integer token id");
      const int64_t v = j[i].is_number_unsigned() ? int64_t(std::min<uint64_t>(j[i].get<uint64_t>(), INT64_MAX))
                                                  : j[i].get<int64_t>();
      check_id(path, v, i, vocab);
      out.push_back(int(v));
    }
  } else {
    if (!tok) fail(path, ": text data needs a tokenizer (--tokenizer DIR, or a model with one)");
    if (tok->bos_id() >= 0) out.push_back(tok->bos_id());
    const std::vector<int> ids = tok->encode(bytes, /*add_special=*/false);
    out.insert(out.end(), ids.begin(), ids.end());
    for (size_t i = 0; i < out.size(); ++i) check_id(path, out[i], i, vocab);
  }
  return out;
}

std::vector<int> read_stream(const std::vector<std::string>& paths, DataFormat fmt, const Tokenizer* tok, int vocab) {
  std::vector<int> all;
  for (const std::string& p : paths) {
    std::vector<int> t = read_tokens(p, fmt, tok, vocab);
    all.insert(all.end(), t.begin(), t.end());
  }
  return all;
}

Windows::Windows(std::vector<int> stream, int T, const std::string& what) : stream_(std::move(stream)), T_(T) {
  if (T < 1) fail("sequence length must be >= 1, got ", T);
  if (stream_.size() < size_t(T) + 1)
    fail(what, ": ", stream_.size(), " tokens, fewer than one window of sequence length + 1 = ", T + 1);
  n_ = int64_t((stream_.size() - 1) / size_t(T));
}

namespace {
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

int64_t WindowOrder::at(int64_t g) {
  if (!shuffle_) return g % n_;
  const int64_t e = g / n_;
  if (e != epoch_) {
    perm_.resize(size_t(n_));
    for (int64_t i = 0; i < n_; ++i) perm_[size_t(i)] = i;
    uint64_t s = seed_ ^ (0xd1b54a32d192ed03ULL * uint64_t(e + 1));
    for (int64_t i = n_ - 1; i > 0; --i) {
      // Unbiased draw in [0, i] by rejection (the same on every host).
      const uint64_t range = uint64_t(i) + 1, limit = UINT64_MAX - UINT64_MAX % range;
      uint64_t r;
      do r = splitmix64(s);
      while (r >= limit);
      std::swap(perm_[size_t(i)], perm_[size_t(r % range)]);
    }
    epoch_ = e;
  }
  return perm_[size_t(g % n_)];
}

std::vector<int> split_tail(std::vector<int>& stream, double fraction) {
  if (!(fraction > 0 && fraction < 1)) fail("--val-fraction: must lie strictly between 0 and 1, got ", fraction);
  const size_t keep = size_t(double(stream.size()) * (1.0 - fraction));
  std::vector<int> tail(stream.begin() + std::ptrdiff_t(keep), stream.end());
  stream.resize(keep);
  return tail;
}

}  // namespace camelid::train
