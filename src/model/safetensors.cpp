#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/checked_size.h"
#include "core/error.h"
#include "core/json.h"

namespace camelid {

namespace {

// Bits per element of every dtype the reference implementation knows (0: unknown).
unsigned element_bits(const std::string& dtype) {
  static const std::pair<const char*, unsigned> table[] = {
      {"BOOL", 8},     {"U8", 8},       {"I8", 8},       {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8},
      {"F4", 4},       {"F6_E2M3", 6},  {"F6_E3M2", 6},  {"I16", 16},    {"U16", 16},    {"F16", 16},
      {"BF16", 16},    {"I32", 32},     {"U32", 32},     {"F32", 32},    {"C64", 64},    {"F64", 64},
      {"I64", 64},     {"U64", 64}};
  for (auto& [name, bits] : table)
    if (dtype == name) return bits;
  return 0;
}

}  // namespace


std::map<std::string, SafetensorsEntry> parse_safetensors(const uint8_t* data, size_t size, const std::string& path) {
  if (size < 8) fail(path, ": truncated safetensors file (", size, " bytes, no header)");
  uint64_t n = 0;
  std::memcpy(&n, data, 8);  // little-endian on every platform we build for
  if (n > kMaxSafetensorsHeader)
    fail(path, ": header length ", n, " exceeds the safetensors limit of ", kMaxSafetensorsHeader, " bytes");
  if (n > size - 8) fail(path, ": header length ", n, " exceeds file size ", size);
  const std::string_view text(reinterpret_cast<const char*>(data) + 8, size_t(n));
  if (text.empty() || text[0] != '{') fail(path, ": safetensors header is not a JSON object");
  // The header is at most 3 levels deep (object, entry, shape); 16 leaves room for clear type errors.
  const nlohmann::json header = parse_json(text, path + ": safetensors header", JsonLimits{16, true});
  if (!header.is_object()) fail(path, ": safetensors header is not a JSON object");

  const uint8_t* base = data + 8 + n;
  const uint64_t data_size = size - 8 - n;
  std::map<std::string, SafetensorsEntry> out;
  std::vector<std::tuple<uint64_t, uint64_t, const std::string*>> spans;  // begin, end, name
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail(path, ": __metadata__ must be an object of strings");
      for (auto& [k, v] : e.items())
        if (!v.is_string()) fail(path, ": __metadata__ value of '", printable_name(k), "' is not a string");
      continue;
    }
    const std::string where = path + ": tensor '" + printable_name(name) + "'";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail(where, ": entry needs dtype, shape and data_offsets");
    SafetensorsEntry t;
    if (!e["dtype"].is_string()) fail(where, ": dtype is not a string");
    t.dtype = e["dtype"].get<std::string>();
    const unsigned bits = element_bits(t.dtype);
    if (bits == 0) fail(where, ": unknown dtype '", printable_name(t.dtype), "'");
    if (!e["shape"].is_array()) fail(where, ": shape is not an array");
    CheckedSize count = 1;
    for (auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(where, ": shape has an entry that is not a non-negative integer: ", dump_json(d).substr(0, 40));
      count *= d.get<uint64_t>();
      t.shape.push_back(int64_t(d.get<uint64_t>()));  // any large value fails the size checks below
    }
    const CheckedSize nbits = count * bits;
    if (nbits.overflowed()) fail(where, ": shape is too large (its size overflows 64 bits)");
    if (nbits.value() % 8 != 0) fail(where, ": shape x dtype is not a whole number of bytes");
    const uint64_t need = nbits.value() / 8;
    auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(where, ": data_offsets must be [begin, end]");
    const uint64_t b = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (b > end || end > data_size)
      fail(where, ": data_offsets [", b, ", ", end, "] out of range (data section is ", data_size,
           " bytes; file truncated?)");
    if (end - b != need)
      fail(where, ": data_offsets span ", end - b, " bytes but shape x dtype needs ", need);
    t.data = base + b;
    t.nbytes = size_t(end - b);
    auto [it, fresh] = out.emplace(name, std::move(t));
    if (!fresh) fail(where, ": appears twice in the header");  // parse_json rejects this already
    spans.emplace_back(b, end, &it->first);
  }

  // In offset order the tensors must tile the data section: every byte belongs to exactly one
  // tensor. Overlaps would let one tensor alias another, gaps and trailing bytes are what a
  // shifted header length or a spliced file leaves behind.
  std::sort(spans.begin(), spans.end(), [](const auto& x, const auto& y) {
    return std::tie(std::get<0>(x), std::get<1>(x), *std::get<2>(x)) < std::tie(std::get<0>(y), std::get<1>(y), *std::get<2>(y));
  });
  uint64_t at = 0;
  const std::string* prev = nullptr;
  for (auto& [b, end, name] : spans) {
    if (b != at) {
      const std::string where = path + ": tensor '" + printable_name(*name) + "'";
      if (b < at)
        fail(where, ": data_offsets [", b, ", ", end, "] overlap tensor '", printable_name(*prev), "' (which ends at ", at, ")");
      fail(where, ": data_offsets [", b, ", ", end, "] leave a gap of ", b - at, " bytes after ",
           prev ? "tensor '" + printable_name(*prev) + "'" : std::string("the header"),
           " (tensors must cover the data section contiguously)");
    }
    at = end;
    prev = name;
  }
  if (at != data_size)
    fail(path, ": the tensors cover ", at, " of the ", data_size, " bytes after the header: ", data_size - at,
         " bytes of trailing data (corrupt file, or a wrong header length)");
  return out;
}

namespace {

// The length field and the JSON header, padded so that the data section stays 8-byte aligned.
std::string safetensors_head(const std::vector<SafetensorsOut>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  const char* names[] = {"F32", "F16", "BF16"};
  size_t off = 0;
  for (auto& t : tensors) {
    header[t.name] = {{"dtype", names[int(t.dtype)]}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h;
}

}  // namespace

std::string safetensors_bytes(const std::vector<SafetensorsOut>& tensors) {
  std::string out = safetensors_head(tensors);
  for (auto& t : tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors) {
  const std::string head = safetensors_head(tensors);
  std::ofstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot create");
  f.write(head.data(), std::streamsize(head.size()));
  for (auto& t : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
  if (!f) fail(path, ": write failed");
}

}  // namespace camelid
