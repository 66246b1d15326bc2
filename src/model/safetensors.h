#pragma once
// Reader for the safetensors format: 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then the raw bytes. Validated as strictly as the
// reference implementation (huggingface/safetensors) does, so a file it rejects is rejected here.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mmap_file.h"
#include "core/tensor.h"

namespace camelid {

struct SafetensorsEntry {
  std::string dtype;              // as written in the file ("F32", "BF16", ...)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the buffer that was parsed
  size_t nbytes = 0;
};

// The reference implementation's limit on the JSON header (safetensors' MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// Parses and validates the header of a safetensors file held in memory; `path` names it in errors.
// Throws Error naming the file (and tensor) when: the header length exceeds the file or 100 MB;
// the header is not one JSON object of valid entries (duplicate keys included); a dtype is
// unknown; shape x dtype size differs from the tensor's data_offsets span; or the tensors, in
// offset order, do not cover the data section exactly (overlaps, gaps, trailing bytes: what a
// header length off by a byte, or a spliced file, looks like).
std::map<std::string, SafetensorsEntry> parse_safetensors(const uint8_t* data, size_t size, const std::string& path);
inline std::map<std::string, SafetensorsEntry> parse_safetensors(const MappedFile& file) {
  return parse_safetensors(file.data(), file.size(), file.path());
}


}  // namespace camelid

namespace camelid {

struct SafetensorsOut {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes tensors (in the given order) to a .safetensors file; throws Error naming the path.
void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors);

// The bytes write_safetensors writes (header padded to 8 bytes, then the tensors in order).
std::string safetensors_bytes(const std::vector<SafetensorsOut>& tensors);

}  // namespace camelid
