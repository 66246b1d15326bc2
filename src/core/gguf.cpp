#include "core/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/checked_size.h"
#include "core/error.h"

namespace camelid::gguf {

namespace {

// Block size and bytes of every ggml type id (0 where the id is unused), so that the layout of a
// file is checked even where camelid cannot run a tensor's type (`info` still lists it).
struct GgmlSize {
  int block, bytes;
};
constexpr GgmlSize kGgmlSizes[] = {
    {1, 4},     {1, 2},     {32, 18},   {32, 20},   {0, 0},     {0, 0},     {32, 22},   {32, 24},  // f32 .. q5_1
    {32, 34},   {32, 36},   {256, 84},  {256, 110}, {256, 144}, {256, 176}, {256, 210}, {256, 292},  // q8_0 .. q8_k
    {256, 66},  {256, 74},  {256, 98},  {256, 50},  {32, 18},   {256, 110}, {256, 82},  {256, 136},  // iq2_xxs .. iq4_xs
    {1, 1},     {1, 2},     {1, 4},     {1, 8},     {1, 8},     {256, 56},  {1, 2},     {0, 0},      // i8 .. bf16, 31
    {0, 0},     {0, 0},     {256, 54},  {256, 66}};                                                   // 32, 33, tq1_0, tq2_0

constexpr uint64_t kMaxArrayItems = uint64_t(1) << 24;  // 16M: 64x Llama 3's vocabulary
constexpr uint64_t kMaxTotalItems = uint64_t(1) << 26;  // all metadata values of one file
constexpr size_t kMaxNameBytes = 64;                    // GGML_MAX_NAME
constexpr size_t kMaxKeyBytes = 1 << 16;

// Smallest encoding of one value of a type: what a count claiming more values than the remaining
// bytes can hold is checked against, before anything is allocated.
uint64_t min_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: case ValueType::String: return 8;
    case ValueType::Array: return 12;
  }
  return 1;
}

class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const std::string& src) : p_(p), n_(n), src_(src) {}

  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

  template <class T>
  T get(const char* what) {
    if (left() < sizeof(T)) fail(src_, ": truncated at byte ", pos_, " (reading ", what, ")");
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string str(const char* what, uint64_t max_len) {
    const uint64_t len = get<uint64_t>(what);
    if (len > left()) fail(src_, ": ", what, " of length ", len, " at byte ", pos_ - 8, " runs past the end of the file");
    if (len > max_len) fail(src_, ": ", what, " of length ", len, " at byte ", pos_ - 8, " is longer than ", max_len);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

  // A count of items of at least `item_bytes` each: no more than the remaining bytes can hold.
  uint64_t count(const char* what, uint64_t item_bytes, uint64_t max) {
    const uint64_t n = get<uint64_t>(what);
    if (n > left() / item_bytes) fail(src_, ": ", what, " = ", n, " at byte ", pos_ - 8, " is more than the file can hold");
    if (n > max) fail(src_, ": ", what, " = ", n, " is more than the limit of ", max);
    return n;
  }

  ValueType type(const char* what) {
    const uint32_t t = get<uint32_t>(what);
    if (t > uint32_t(ValueType::F64)) fail(src_, ": unknown metadata value type ", t, " at byte ", pos_ - 4, " (", what, ")");
    return ValueType(t);
  }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const std::string& src_;
};

class MetadataParser {
 public:
  MetadataParser(Reader& r, const std::string& src) : r_(r), src_(src) {}

  Value value(ValueType t, const std::string& key, int depth) {
    Value v;
    v.type = t;
    switch (t) {
      case ValueType::U8: v.i = r_.get<uint8_t>("u8"); break;
      case ValueType::I8: v.i = r_.get<int8_t>("i8"); break;
      case ValueType::U16: v.i = r_.get<uint16_t>("u16"); break;
      case ValueType::I16: v.i = r_.get<int16_t>("i16"); break;
      case ValueType::U32: v.i = r_.get<uint32_t>("u32"); break;
      case ValueType::I32: v.i = r_.get<int32_t>("i32"); break;
      case ValueType::I64: v.i = r_.get<int64_t>("i64"); break;
      case ValueType::U64:
        v.u = r_.get<uint64_t>("u64");
        v.i = v.u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(v.u);
        break;
      case ValueType::F32: v.f = r_.get<float>("f32"); break;
      case ValueType::F64: v.f = r_.get<double>("f64"); break;
      case ValueType::Bool: {
        const uint8_t b = r_.get<uint8_t>("bool");
        if (b > 1) fail(src_, ": key '", printable_name(key), "': bool value ", int(b), " is neither 0 nor 1");
        v.i = b;
        break;
      }
      case ValueType::String: v.str = r_.str("string", kMaxStringBytes); break;
      case ValueType::Array: array(v, key, depth + 1); break;
    }
    if (++total_ > kMaxTotalItems) fail(src_, ": more than ", kMaxTotalItems, " metadata values");
    return v;
  }

 private:
  void array(Value& v, const std::string& key, int depth) {
    if (depth > kMaxArrayDepth)
      fail(src_, ": key '", printable_name(key), "': arrays nested deeper than ", kMaxArrayDepth);
    v.elem = r_.type("array element type");
    const uint64_t n = r_.count("array length", min_bytes(v.elem), kMaxArrayItems);
    switch (v.elem) {
      case ValueType::String:
        v.strs.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.strs.push_back(value(v.elem, key, depth).str);
        break;
      case ValueType::F32: case ValueType::F64:
        v.floats.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.floats.push_back(value(v.elem, key, depth).f);
        break;
      case ValueType::Array:
        v.arrays.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.arrays.push_back(value(v.elem, key, depth));
        break;
      default:
        v.ints.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) v.ints.push_back(value(v.elem, key, depth).i);
        break;
    }
  }

  Reader& r_;
  const std::string& src_;
  uint64_t total_ = 0;
};

}  // namespace

const char* value_type_name(ValueType t) {
  static const char* const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) < std::size(names) ? names[uint32_t(t)] : "?";
}

bool Value::is_int() const {
  switch (type) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16: case ValueType::U32:
    case ValueType::I32: case ValueType::U64: case ValueType::I64: return true;
    default: return false;
  }
}

size_t Value::array_size() const { return ints.size() + floats.size() + strs.size() + arrays.size(); }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // checked when the file was parsed
  return n;
}

std::unique_ptr<File> File::open(const std::string& path, bool no_mmap) {
  auto map = std::make_unique<MappedFile>(path, no_mmap, /*populate_now=*/false);
  std::unique_ptr<File> f(new File());
  f->source_ = path;
  f->parse_all(map->data(), map->size());
  f->map_ = std::move(map);
  return f;
}

std::unique_ptr<File> File::parse(const uint8_t* data, size_t size, const std::string& source) {
  std::unique_ptr<File> f(new File());
  f->source_ = source;
  f->parse_all(data, size);
  return f;
}

bool File::sniff(const std::string& path) {
  // Only a regular file: opening a FIFO would block, a device never end.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  uint32_t magic = 0;
  return in.read(reinterpret_cast<char*>(&magic), 4) && magic == kMagic;
}

void File::parse_all(const uint8_t* data, size_t size) {
  size_ = size;
  Reader r(data, size, source_);
  if (r.get<uint32_t>("magic") != kMagic) fail(source_, ": not a GGUF file (bad magic)");
  version_ = r.get<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    fail(source_, ": GGUF version ", version_, " is not supported (camelid reads versions 2 and 3)");
  // Each tensor info takes at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 + 8 bytes.
  const uint64_t n_tensors = r.get<uint64_t>("tensor count");
  const uint64_t n_kv = r.count("metadata count", 8 + 4 + 1, kMaxTotalItems);
  if (n_tensors > r.left() / 32) fail(source_, ": tensor count ", n_tensors, " is more than the file can hold");

  MetadataParser mp(r, source_);
  kv_.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str("metadata key", kMaxKeyBytes);
    if (!kv_index_.emplace(key, kv_.size()).second) fail(source_, ": duplicate metadata key '", printable_name(key), "'");
    const ValueType t = r.type("metadata value type");
    Value v = mp.value(t, key, 0);
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::U32) fail(source_, ": general.alignment must be a u32, not ", value_type_name(a->type));
    if (a->i == 0 || (a->i & (a->i - 1)) != 0 || a->i > (1 << 20))
      fail(source_, ": general.alignment = ", a->i, " is not a power of two up to 2^20");
    alignment_ = size_t(a->i);
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = r.str("tensor name", kMaxNameBytes);
    const std::string where = source_ + ": tensor '" + printable_name(t.name) + "'";
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) fail(where, " appears twice");
    const uint32_t n_dims = r.get<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > uint32_t(kMaxDims)) fail(where, " has ", n_dims, " dimensions (1 to ", kMaxDims, " allowed)");
    CheckedSize numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t ne = r.get<int64_t>("tensor dimension");
      if (ne <= 0) fail(where, ": dimension ", d, " is ", ne, " (must be positive)");
      t.ne.push_back(ne);
      numel *= ne;
    }
    if (!numel.fits(uint64_t(std::numeric_limits<int64_t>::max()))) fail(where, ": its element count overflows");
    t.ggml_type = r.get<uint32_t>("tensor type");
    const GgmlSize gs = t.ggml_type < std::size(kGgmlSizes) ? kGgmlSizes[t.ggml_type] : GgmlSize{0, 0};
    if (gs.block == 0) fail(where, ": unknown tensor type ", t.ggml_type);
    if (t.ne[0] % gs.block != 0)
      fail(where, ": row length ", t.ne[0], " is not a multiple of ", ggml_type_name(t.ggml_type), "'s block of ", gs.block);
    const CheckedSize nbytes = CheckedSize(numel.value() / uint64_t(gs.block)) * uint64_t(gs.bytes);
    if (!nbytes.fits(size)) fail(where, ": its ", ggml_type_name(t.ggml_type), " data is larger than the file");
    t.nbytes = size_t(nbytes.value());
    t.offset = r.get<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0) fail(where, ": data offset ", t.offset, " is not a multiple of the alignment ", alignment_);
    try {
      t.dtype = dtype_from_ggml(t.ggml_type, where);
      t.supported = true;
    } catch (const Error&) {
      t.supported = false;  // listed by `info`; a loader that needs it refuses it by name
    }
    tensors_.push_back(std::move(t));
  }

  const CheckedSize data_start = (CheckedSize(r.pos()) + (alignment_ - 1));
  data_offset_ = size_t(std::min<uint64_t>(data_start.value() / alignment_ * alignment_, size));
  if (tensors_.empty()) return;
  if (data_start.overflowed() || data_offset_ < r.pos() || data_start.value() / alignment_ * alignment_ > size)
    fail(source_, ": the tensor data section starts past the end of the file");
  const uint64_t data_size = size - data_offset_;
  std::vector<const TensorInfo*> by_offset;
  for (TensorInfo& t : tensors_) {
    if (!(CheckedSize(t.offset) + t.nbytes).fits(data_size))
      fail(source_, ": tensor '", printable_name(t.name), "' (offset ", t.offset, ", ", t.nbytes,
           " bytes) runs past the end of the file (truncated?)");
    t.data = data + data_offset_ + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->offset + by_offset[k - 1]->nbytes > by_offset[k]->offset)
      fail(source_, ": the data of tensors '", printable_name(by_offset[k - 1]->name), "' and '",
           printable_name(by_offset[k]->name), "' overlap");
}

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const Value& File::need(const std::string& key) const {
  const Value* v = find(key);
  if (!v) fail(source_, ": metadata key '", key, "' is missing");
  return *v;
}

int64_t File::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const Value& v = need(key);
  if (!v.is_int()) fail(source_, ": metadata key '", key, "' must be an integer, not ", value_type_name(v.type));
  if (v.i < lo || v.i > hi || (v.type == ValueType::U64 && v.u > uint64_t(hi)))
    fail(source_, ": metadata key '", key, "' = ", v.type == ValueType::U64 ? std::to_string(v.u) : std::to_string(v.i),
         " is out of range [", lo, ", ", hi, "]");
  return v.i;
}

int64_t File::get_int(const std::string& key, int64_t lo, int64_t hi, int64_t dflt) const {
  return find(key) ? get_int(key, lo, hi) : dflt;
}

double File::get_float(const std::string& key, double dflt) const {
  const Value* v = find(key);
  if (!v) return dflt;
  if (v->is_float()) return v->f;
  if (v->is_int()) return double(v->i);
  fail(source_, ": metadata key '", key, "' must be a number, not ", value_type_name(v->type));
}

bool File::get_bool(const std::string& key, bool dflt) const {
  const Value* v = find(key);
  if (!v) return dflt;
  if (v->type != ValueType::Bool) fail(source_, ": metadata key '", key, "' must be a bool, not ", value_type_name(v->type));
  return v->i != 0;
}

std::string File::get_string(const std::string& key, const std::string& dflt) const {
  return find(key) ? get_string(key) : dflt;
}

std::string File::get_string(const std::string& key) const {
  const Value& v = need(key);
  if (v.type != ValueType::String) fail(source_, ": metadata key '", key, "' must be a string, not ", value_type_name(v.type));
  return v.str;
}

namespace {
const Value& need_array(const File& f, const Value& v, const std::string& key, const char* kind, bool ok) {
  if (v.type != ValueType::Array || !ok)
    fail(f.source(), ": metadata key '", key, "' must be an array of ", kind, ", not ",
         v.type == ValueType::Array ? std::string("an array of ") + value_type_name(v.elem) : value_type_name(v.type));
  return v;
}
}  // namespace

const std::vector<std::string>& File::get_strings(const std::string& key) const {
  const Value& v = need(key);
  return need_array(*this, v, key, "strings", v.elem == ValueType::String).strs;
}

const std::vector<int64_t>& File::get_ints(const std::string& key) const {
  const Value& v = need(key);
  Value probe;
  probe.type = v.elem;
  return need_array(*this, v, key, "integers", probe.is_int() || v.elem == ValueType::Bool).ints;
}

const std::vector<double>& File::get_floats(const std::string& key) const {
  const Value& v = need(key);
  return need_array(*this, v, key, "floats", v.elem == ValueType::F32 || v.elem == ValueType::F64).floats;
}

std::string value_summary(const Value& v, size_t max_items) {
  switch (v.type) {
    case ValueType::String: {
      std::string s = v.str.size() > 120 ? v.str.substr(0, 120) + "..." : v.str;
      std::string out = "\"";
      for (unsigned char c : s) out += c == '\n' ? std::string("\\n") : (c < 0x20 ? std::string("?") : std::string(1, char(c)));
      return out + "\"";
    }
    case ValueType::Bool: return v.i ? "true" : "false";
    case ValueType::F32: case ValueType::F64: return to_str(v.f);
    case ValueType::U64: return std::to_string(v.u);
    case ValueType::Array: {
      std::string out = "[";
      const size_t n = v.array_size();
      for (size_t k = 0; k < n && k < max_items; ++k) {
        if (k) out += ", ";
        if (!v.strs.empty()) {
          Value item;
          item.type = ValueType::String;
          item.str = v.strs[k];
          out += value_summary(item);
        }
        else if (!v.floats.empty()) out += to_str(v.floats[k]);
        else if (!v.ints.empty()) out += std::to_string(v.ints[k]);
        else out += value_summary(v.arrays[k], max_items);
      }
      if (n > max_items) out += ", ... (" + std::to_string(n) + " " + value_type_name(v.elem) + ")";
      return out + "]";
    }
    default: return std::to_string(v.i);
  }
}

}  // namespace camelid::gguf
