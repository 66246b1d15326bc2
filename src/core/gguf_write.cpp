// gguf::Writer: the inverse of the reader (version 3, little-endian), for convert/quantize and
// for tests that build (and then corrupt) small files.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"

namespace camelid::gguf {

namespace {

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_scalar(std::string& out, ValueType t, const Value& v) {
  switch (t) {
    case ValueType::U8: put<uint8_t>(out, uint8_t(v.i)); break;
    case ValueType::I8: put<int8_t>(out, int8_t(v.i)); break;
    case ValueType::U16: put<uint16_t>(out, uint16_t(v.i)); break;
    case ValueType::I16: put<int16_t>(out, int16_t(v.i)); break;
    case ValueType::U32: put<uint32_t>(out, uint32_t(v.i)); break;
    case ValueType::I32: put<int32_t>(out, int32_t(v.i)); break;
    case ValueType::U64: put<uint64_t>(out, v.u ? v.u : uint64_t(v.i)); break;
    case ValueType::I64: put<int64_t>(out, v.i); break;
    case ValueType::F32: put<float>(out, float(v.f)); break;
    case ValueType::F64: put<double>(out, v.f); break;
    case ValueType::Bool: put<uint8_t>(out, v.i ? 1 : 0); break;
    case ValueType::String: put_str(out, v.str); break;
    case ValueType::Array: break;
  }
}

void put_value(std::string& out, const Value& v) {
  if (v.type != ValueType::Array) return put_scalar(out, v.type, v);
  put<uint32_t>(out, uint32_t(v.elem));
  put<uint64_t>(out, v.array_size());
  Value item;
  for (auto& s : v.strs) item.str = s, put_scalar(out, v.elem, item);
  for (double f : v.floats) item.f = f, put_scalar(out, v.elem, item);
  for (int64_t i : v.ints) item.i = i, put_scalar(out, v.elem, item);
  for (auto& a : v.arrays) put_value(out, a);
}

}  // namespace

Value scalar(ValueType t) {
  Value v;
  v.type = t;
  return v;
}
Value array_of(ValueType elem) {
  Value v = scalar(ValueType::Array);
  v.elem = elem;
  return v;
}
Value u32_value(uint32_t x) {
  Value v = scalar(ValueType::U32);
  v.i = x;
  return v;
}
Value i32_value(int32_t x) {
  Value v = scalar(ValueType::I32);
  v.i = x;
  return v;
}
Value f32_value(float x) {
  Value v = scalar(ValueType::F32);
  v.f = x;
  return v;
}
Value bool_value(bool x) {
  Value v = scalar(ValueType::Bool);
  v.i = x;
  return v;
}
Value string_value(std::string s) {
  Value v = scalar(ValueType::String);
  v.str = std::move(s);
  return v;
}
Value strings_value(std::vector<std::string> x) {
  Value v = array_of(ValueType::String);
  v.strs = std::move(x);
  return v;
}
Value f32s_value(const std::vector<float>& x) {
  Value v = array_of(ValueType::F32);
  v.floats.assign(x.begin(), x.end());
  return v;
}
Value i32s_value(const std::vector<int32_t>& x) {
  Value v = array_of(ValueType::I32);
  v.ints.assign(x.begin(), x.end());
  return v;
}

const Value* find(const KeyValues& kv, const std::string& key) {
  for (auto& [k, v] : kv)
    if (k == key) return &v;
  return nullptr;
}

void erase(KeyValues& kv, const std::string& key) {
  std::erase_if(kv, [&](const auto& p) { return p.first == key; });
}

void Writer::add(const std::string& key, Value v) { kv_.emplace_back(key, std::move(v)); }
void Writer::add_string(const std::string& key, const std::string& s) { add(key, string_value(s)); }
void Writer::add_u32(const std::string& key, uint32_t x) { add(key, u32_value(x)); }
void Writer::add_i32(const std::string& key, int32_t x) { add(key, i32_value(x)); }
void Writer::add_f32(const std::string& key, float x) { add(key, f32_value(x)); }
void Writer::add_bool(const std::string& key, bool x) { add(key, bool_value(x)); }
void Writer::add_strings(const std::string& key, std::vector<std::string> x) { add(key, strings_value(std::move(x))); }
void Writer::add_f32s(const std::string& key, const std::vector<float>& x) { add(key, f32s_value(x)); }
void Writer::add_i32s(const std::string& key, const std::vector<int32_t>& x) { add(key, i32s_value(x)); }

void Writer::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
  const uint64_t n = bytes.size();
  tensors_.push_back({name, dtype, std::move(ne), std::move(bytes), {}, n});
}

void Writer::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, RowProducer rows) {
  if (ne.empty() || !row_fits(dtype, ne[0]))
    fail("gguf writer: tensor '", name, "': row length is not a multiple of ", dtype_name(dtype), "'s block");
  uint64_t n_rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) n_rows *= uint64_t(ne[d]);
  const uint64_t n = n_rows * row_bytes(dtype, ne[0]);
  tensors_.push_back({name, dtype, std::move(ne), {}, std::move(rows), n});
}

std::string Writer::header() const {
  std::string out;
  put<uint32_t>(out, kMagic);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (auto& [k, v] : kv_) {
    put_str(out, k);
    put<uint32_t>(out, uint32_t(v.type));
    put_value(out, v);
  }
  uint64_t offset = 0;
  for (auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put<int64_t>(out, d);
    put<uint32_t>(out, uint32_t(dtype_info(t.dtype).ggml_type));
    put<uint64_t>(out, offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  if (!tensors_.empty()) out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
  return out;
}

// Feeds the data section to sink(const uint8_t*, size_t): each tensor then its padding; a
// streamed tensor in chunks of rows (~16 MiB), so memory stays bounded whatever the model.
template <class Sink>
void Writer::emit_data(Sink&& sink, const ProgressFn& progress) const {
  constexpr uint64_t kChunkBytes = uint64_t(16) << 20;
  Progress p;
  p.n_tensors = tensors_.size();
  for (auto& t : tensors_) p.bytes_total += t.nbytes;
  std::vector<uint8_t> buf;
  const std::vector<uint8_t> zeros(alignment_, 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const T& t = tensors_[i];
    p.tensor = i;
    p.name = &t.name;
    if (!t.rows) {
      sink(t.bytes.data(), t.bytes.size());
      p.bytes_done += t.nbytes;
      if (progress) progress(p);
    } else {
      const uint64_t row = row_bytes(t.dtype, t.ne[0]);
      const int64_t n_rows = int64_t(t.nbytes / row);
      const int64_t per_chunk = int64_t(std::max<uint64_t>(1, kChunkBytes / row));
      for (int64_t r = 0; r < n_rows; r += per_chunk) {
        const int64_t n = std::min(per_chunk, n_rows - r);
        buf.resize(size_t(n) * row);
        t.rows(r, n, buf.data());
        sink(buf.data(), buf.size());
        p.bytes_done += buf.size();
        if (progress) progress(p);
      }
    }
    if (const size_t pad = size_t((alignment_ - t.nbytes % alignment_) % alignment_)) sink(zeros.data(), pad);
  }
}

std::string Writer::bytes() const {
  std::string out = header();
  emit_data([&](const uint8_t* p, size_t n) { out.append(reinterpret_cast<const char*>(p), n); }, {});
  return out;
}

void Writer::write(const std::string& path, const ProgressFn& progress) const {
  const std::string part = path + ".part";
  std::FILE* f = std::fopen(part.c_str(), "wb");
  if (!f) fail(path, ": cannot create ", part, ": ", std::strerror(errno));
  // Removes the partial file on any failure (a producer's Error included) and passes it on.
  try {
    auto sink = [&](const void* p, size_t n) {
      if (n && std::fwrite(p, 1, n, f) != n) fail(path, ": cannot write (", std::strerror(errno), ")");
    };
    const std::string h = header();
    sink(h.data(), h.size());
    emit_data([&](const uint8_t* p, size_t n) { sink(p, n); }, progress);
    if (std::fflush(f) != 0) fail(path, ": cannot write (", std::strerror(errno), ")");
  } catch (...) {
    std::fclose(f);
    std::remove(part.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(part.c_str());
    fail(path, ": cannot write (", std::strerror(errno), ")");
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(part.c_str());
    fail(path, ": cannot rename ", part, " to it: ", std::strerror(e));
  }
}

void check_writable(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory (expected the output file's name)");
  const std::string part = path + ".part";
  std::FILE* f = std::fopen(part.c_str(), "wb");
  if (!f) fail(path, ": cannot create ", part, ": ", std::strerror(errno));
  std::fclose(f);
  std::remove(part.c_str());
}

}  // namespace camelid::gguf
