#include "model/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace camelid {

namespace {
size_t element_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2")
    return 1;
  return 0;
}
}  // namespace

std::map<std::string, SafetensorsEntry> parse_safetensors(const MappedFile& f) {
  const std::string& path = f.path();
  if (f.size() < 8) fail(path, ": truncated safetensors file (", f.size(), " bytes, no header)");
  uint64_t n = 0;
  std::memcpy(&n, f.data(), 8);  // little-endian on every platform we build for
  if (n > f.size() - 8) fail(path, ": header length ", n, " exceeds file size ", f.size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(f.data() + 8, f.data() + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid safetensors header JSON: ", e.what());
  }
  if (!header.is_object()) fail(path, ": safetensors header is not a JSON object");

  const uint8_t* base = f.data() + 8 + n;
  const size_t data_size = f.size() - 8 - n;
  std::map<std::string, SafetensorsEntry> out;
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail(where, ": entry needs dtype, shape and data_offsets");
    SafetensorsEntry t;
    if (!e["dtype"].is_string()) fail(where, ": dtype is not a string");
    t.dtype = e["dtype"].get<std::string>();
    size_t esize = element_size(t.dtype);
    if (esize == 0) fail(where, ": unknown dtype '", t.dtype, "'");
    if (!e["shape"].is_array()) fail(where, ": shape is not an array");
    uint64_t count = 1;
    for (auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(where, ": shape has a non-integer entry ", d.dump());
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 40) || (v && count > (1ull << 40) / v)) fail(where, ": shape is too large");
      count *= v;
      t.shape.push_back(int64_t(v));
    }
    auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      fail(where, ": data_offsets must be [begin, end]");
    uint64_t b = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (b > end || end > data_size)
      fail(where, ": data_offsets [", b, ", ", end, "] out of range (data section is ", data_size,
           " bytes; file truncated?)");
    if (end - b != count * esize)
      fail(where, ": data_offsets span ", end - b, " bytes but shape x dtype needs ", count * esize);
    t.data = base + b;
    t.nbytes = size_t(end - b);
    out.emplace(name, std::move(t));
  }
  return out;
}

}  // namespace camelid

#include <fstream>

namespace camelid {

void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  const char* names[] = {"F32", "F16", "BF16"};
  size_t off = 0;
  for (auto& t : tensors) {
    header[t.name] = {{"dtype", names[int(t.dtype)]}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::ofstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot create");
  uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(h.data(), std::streamsize(h.size()));
  for (auto& t : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
  if (!f) fail(path, ": write failed");
}

}  // namespace camelid
