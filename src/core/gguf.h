#pragma once
// Reader for GGUF (v2 and v3), llama.cpp's single-file model format: a header, typed key/value
// metadata (nested arrays included), tensor infos (name, dims, ggml type, offset), then the
// aligned tensor data. Files come from strangers: every count, length, offset and dimension is
// checked against the bytes that are there before anything is allocated or read, and any defect
// throws Error naming the file and the key or tensor.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/mmap_file.h"

namespace camelid::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr size_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;             // GGML_MAX_DIMS
inline constexpr int kMaxArrayDepth = 8;       // arrays of arrays of ...
inline constexpr uint64_t kMaxStringBytes = uint64_t(1) << 30;

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars: integers and bool in `i` (a u64 above INT64_MAX is kept as `u`),
// floats in `f`, strings in `str`. Arrays: the element type in `elem` and the items in the one
// vector that matches it (ints, floats, strs, or arrays for nested arrays).
struct Value {
  ValueType type = ValueType::U8;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string str;
  ValueType elem = ValueType::U8;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strs;
  std::vector<Value> arrays;

  bool is_int() const;     // any integer type (not bool)
  bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }
  size_t array_size() const;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // dims in GGUF order: ne[0] is the row length (fastest)
  uint32_t ggml_type = 0;
  bool supported = false;   // a type camelid runs (then `dtype` is it)
  DType dtype = DType::F32;
  uint64_t offset = 0;      // relative to the start of the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;        // 0 for a type whose block size camelid does not know
  int64_t numel() const;
};

class File {
 public:
  // Maps the file; no_mmap reads it into memory instead (see MappedFile).
  static std::unique_ptr<File> open(const std::string& path, bool no_mmap = false);
  // Parses bytes already in memory (they must outlive the File); `source` names them in errors.
  static std::unique_ptr<File> parse(const uint8_t* data, size_t size, const std::string& source);
  // Whether `path` starts with the GGUF magic (files are recognised by content, not by name).
  static bool sniff(const std::string& path);

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // start of the tensor data in the file
  size_t file_size() const { return size_; }
  MappedFile* map() const { return map_.get(); }
  std::unique_ptr<MappedFile> release_map() { return std::move(map_); }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  // Typed getters: throw Error naming the file and key when the key is missing (the forms without
  // a default) or holds another type. get_int accepts any integer type and checks the range.
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi) const;
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi, int64_t dflt) const;
  double get_float(const std::string& key, double dflt) const;  // f32/f64 (or an integer)
  bool get_bool(const std::string& key, bool dflt) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;
  std::string get_string(const std::string& key) const;
  // A whole array of the given element kind; throws naming the key on another type.
  const std::vector<std::string>& get_strings(const std::string& key) const;
  const std::vector<int64_t>& get_ints(const std::string& key) const;
  const std::vector<double>& get_floats(const std::string& key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(const std::string& name) const;

 private:
  File() = default;
  void parse_all(const uint8_t* data, size_t size);
  const Value& need(const std::string& key) const;

  std::string source_;
  std::unique_ptr<MappedFile> map_;
  size_t size_ = 0;
  uint32_t version_ = 0;
  size_t alignment_ = kDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorInfo> tensors_;
  // Positions by name: a hostile file may hold millions of keys or tensors, and the duplicate
  // check of each must not scan all the others.
  std::unordered_map<std::string, size_t> kv_index_, tensor_index_;
};

// A readable one-line form of a value (arrays shortened), for `camelid info`.
std::string value_summary(const Value& v, size_t max_items = 8);

// Values for Writer::add.
Value scalar(ValueType t);
Value array_of(ValueType elem);
Value u32_value(uint32_t v);
Value i32_value(int32_t v);
Value f32_value(float v);
Value bool_value(bool v);
Value string_value(std::string s);
Value strings_value(std::vector<std::string> v);
Value f32s_value(const std::vector<float>& v);
Value i32s_value(const std::vector<int32_t>& v);

// Metadata in file order (keys are unique in a file; order is what writers reproduce).
using KeyValues = std::vector<std::pair<std::string, Value>>;
const Value* find(const KeyValues& kv, const std::string& key);
void erase(KeyValues& kv, const std::string& key);  // no-op when absent

// ---- Writing (convert, quantize, and tests that build hostile files) ----
class Writer {
 public:
  // Fills rows [row0, row0 + n) of a streamed tensor into dst (n x row_bytes(dtype, ne[0]) bytes).
  using RowProducer = std::function<void(int64_t row0, int64_t n, uint8_t* dst)>;
  struct Progress {
    size_t tensor = 0, n_tensors = 0;  // the tensor being written (0-based) and how many there are
    const std::string* name = nullptr;
    uint64_t bytes_done = 0, bytes_total = 0;  // tensor data written so far / in all
  };
  using ProgressFn = std::function<void(const Progress&)>;

  explicit Writer(size_t alignment = kDefaultAlignment) : alignment_(alignment) {}
  void add(const std::string& key, Value v);
  void add_string(const std::string& key, const std::string& s);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_strings(const std::string& key, std::vector<std::string> v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  // A tensor of `dtype` with dims ne (GGUF order); `bytes` holds its data (row_bytes(dtype, ne[0])
  // x the other dims; tests may pass any size to build broken files).
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, std::vector<uint8_t> bytes);
  // A tensor whose data is produced while the file is written, a chunk of rows at a time, so that
  // a model larger than memory streams through (ne[0] must be a multiple of dtype's block).
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, RowProducer rows);

  std::string bytes() const;  // the whole file, version 3, in memory (tests)
  // Streams the file to path + ".part" and renames it to `path` once complete, so that an
  // interrupted write never leaves a truncated model under the final name. `progress` is called
  // after every chunk. Throws Error naming the path when it cannot be written.
  void write(const std::string& path, const ProgressFn& progress = {}) const;

 private:
  struct T {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
    RowProducer rows;  // set for a streamed tensor (then `bytes` is empty)
    uint64_t nbytes;   // data size
  };
  std::string header() const;  // everything before the tensor data, padded to the alignment
  template <class Sink>
  void emit_data(Sink&& sink, const ProgressFn& progress) const;

  size_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<T> tensors_;
};

// Throws Error naming `path` when a file cannot be created there (checked before long work).
void check_writable(const std::string& path);

}  // namespace camelid::gguf
