#include "tokenizer/loader_util.h"

#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace camelid::tok {

std::string read_file_capped(const std::string& path, uint64_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open");
  // Read in chunks rather than trusting a size: the path may be a pipe or still growing.
  std::string out;
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    out.append(buf, size_t(f.gcount()));
    if (out.size() > max_bytes) fail(path, ": file is larger than ", max_bytes >> 20, " MiB (not a tokenizer file?)");
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

std::string quote(std::string_view text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 48) { out += "..."; break; }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += char(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    }
  }
  return out + "'";
}

const char* type_name(const json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "a list";
  if (j.is_object()) return "an object";
  return "something else";
}

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const std::string& file, const std::string& field, const json& j, int64_t lo, int64_t hi) {
  // Only true integers: get<int>() would truncate 2^32 to 0 and 1.5 to 1.
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > uint64_t(hi)) fail(file, ": ", field, " = ", v, " is out of range (", lo, "..", hi, ")");
    return int64_t(v);
  }
  if (!j.is_number_integer()) fail(file, ": ", field, " must be an integer, not ", type_name(j));
  const int64_t v = j.get<int64_t>();
  if (v < lo || v > hi) fail(file, ": ", field, " = ", v, " is out of range (", lo, "..", hi, ")");
  return v;
}

std::string get_string(const std::string& file, const std::string& field, const json& j) {
  if (!j.is_string()) fail(file, ": ", field, " must be a string, not ", type_name(j));
  return j.get<std::string>();
}

bool get_bool(const std::string& file, const std::string& field, const json& j) {
  if (!j.is_boolean()) fail(file, ": ", field, " must be true or false, not ", type_name(j));
  return j.get<bool>();
}

std::string field_of(const std::string& field, const char* key) { return field.empty() ? key : field + "." + key; }

bool bool_or(const std::string& file, const std::string& field, const json& obj, const char* key, bool dflt) {
  const json* v = member(obj, key);
  return v ? get_bool(file, field_of(field, key), *v) : dflt;
}

std::string string_or(const std::string& file, const std::string& field, const json& obj, const char* key,
                      const std::string& dflt) {
  const json* v = member(obj, key);
  return v ? get_string(file, field_of(field, key), *v) : dflt;
}

const json& need(const std::string& file, const std::string& field, const json& obj, const char* key) {
  if (!obj.is_object()) fail(file, ": ", field.empty() ? "the file" : field, " must be an object, not ", type_name(obj));
  const json* v = member(obj, key);
  if (!v) fail(file, ": ", field.empty() ? "the file" : field, " has no \"", key, "\"");
  return *v;
}

const json& need_array(const std::string& file, const std::string& field, const json& j) {
  if (!j.is_array()) fail(file, ": ", field, " must be a list, not ", type_name(j));
  return j;
}

const json& need_object(const std::string& file, const std::string& field, const json& j) {
  if (!j.is_object()) fail(file, ": ", field, " must be an object, not ", type_name(j));
  return j;
}

}  // namespace camelid::tok
