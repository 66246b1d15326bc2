#pragma once
// Reader for the safetensors format: 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then the raw bytes. Every offset is checked.
#include <map>
#include <string>
#include <vector>

#include "core/mmap_file.h"
#include "core/tensor.h"

namespace camelid {

struct SafetensorsEntry {
  std::string dtype;              // as written in the file ("F32", "BF16", ...)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the map
  size_t nbytes = 0;
};

// Parses the header of a mapped file; throws Error naming the file and tensor on any defect.
std::map<std::string, SafetensorsEntry> parse_safetensors(const MappedFile& file);

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

}  // namespace camelid
