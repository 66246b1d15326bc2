// gguf::Writer: the inverse of the reader (version 3, little-endian), for convert/quantize and
// for tests that build (and then corrupt) small files.
#include <fstream>

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

void Writer::add(const std::string& key, Value v) { kv_.emplace_back(key, std::move(v)); }
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

void Writer::add_string(const std::string& key, const std::string& s) {
  Value v = scalar(ValueType::String);
  v.str = s;
  add(key, std::move(v));
}
void Writer::add_u32(const std::string& key, uint32_t x) {
  Value v = scalar(ValueType::U32);
  v.i = x;
  add(key, std::move(v));
}
void Writer::add_i32(const std::string& key, int32_t x) {
  Value v = scalar(ValueType::I32);
  v.i = x;
  add(key, std::move(v));
}
void Writer::add_f32(const std::string& key, float x) {
  Value v = scalar(ValueType::F32);
  v.f = x;
  add(key, std::move(v));
}
void Writer::add_bool(const std::string& key, bool x) {
  Value v = scalar(ValueType::Bool);
  v.i = x;
  add(key, std::move(v));
}
void Writer::add_strings(const std::string& key, std::vector<std::string> x) {
  Value v = array_of(ValueType::String);
  v.strs = std::move(x);
  add(key, std::move(v));
}
void Writer::add_f32s(const std::string& key, const std::vector<float>& x) {
  Value v = array_of(ValueType::F32);
  v.floats.assign(x.begin(), x.end());
  add(key, std::move(v));
}
void Writer::add_i32s(const std::string& key, const std::vector<int32_t>& x) {
  Value v = array_of(ValueType::I32);
  v.ints.assign(x.begin(), x.end());
  add(key, std::move(v));
}

void Writer::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
  tensors_.push_back({name, dtype, std::move(ne), std::move(bytes)});
}

std::string Writer::bytes() const {
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
  auto pad = [&](std::string& s) { s.resize((s.size() + alignment_ - 1) / alignment_ * alignment_, '\0'); };
  uint64_t offset = 0;
  for (auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put<int64_t>(out, d);
    put<uint32_t>(out, uint32_t(dtype_info(t.dtype).ggml_type));
    put<uint64_t>(out, offset);
    offset += (t.bytes.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  if (!tensors_.empty()) pad(out);
  for (auto& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    pad(out);
  }
  return out;
}

void Writer::write(const std::string& path) const {
  const std::string b = bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f.write(b.data(), std::streamsize(b.size())) || !f.flush()) fail(path, ": cannot write");
}

}  // namespace camelid::gguf
