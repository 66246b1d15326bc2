#pragma once
// A whole file in memory, read-only. By default it is memory-mapped (instant, shared with the page
// cache, nothing copied). With `read_into_memory` the bytes are read into anonymous memory
// advised for huge pages instead: same size, but on some machines (VMs especially) streaming
// it is much faster than streaming page-cache pages, which is what decode does every token.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace camelid {

// Anonymous read-write memory advised for huge pages, for weights rearranged at load (streamed
// every token like a map read into memory). Throws Error when the OS refuses.
class HugeBuffer {
 public:
  explicit HugeBuffer(size_t size);
  ~HugeBuffer();
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0, alloc_ = 0;
};

class MappedFile {
 public:
  // Throws Error naming the path; refuses anything but a regular file (a FIFO would block, a
  // device never end). A 0-byte file gives size() 0 and data() nullptr. populate_now = false
  // leaves the pages unread until populate() or first use (a loader checks the structure of a
  // file first, so that a corrupt 100 GB file is refused without reading it).
  explicit MappedFile(const std::string& path, bool read_into_memory = false, bool populate_now = true);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Faults the whole map in now rather than during the first forward pass (a no-op when the
  // bytes were read into memory, or already populated). Throws if the file shrank meanwhile.
  void populate();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<HugeBuffer> mem_;  // the bytes read into memory, not a map of the file
  bool populated_ = false;
};

// Gives back to the OS the pages wholly inside [p, p + n) of a private mapping whose bytes were
// copied elsewhere and will not be read again (a file map would read them from the file again,
// anonymous memory would read zeros): a model's resident size stays that of one copy.
void release_pages(const void* p, size_t n);

// The whole of a regular file (FIFOs, devices and directories are refused). Throws Error naming
// the path, also when the file holds more than max_bytes (a text file that big is no config).
std::string read_text_file(const std::string& path, size_t max_bytes = size_t(1) << 30);

// Drops the file's clean pages from the page cache (a no-op where the OS declines). A later
// MappedFile then reads it back from disk in 2 MiB folios and maps them with huge pages, which
// pages cached earlier by read() or by another mapping may not allow. For benchmarks.
void evict_from_page_cache(const std::string& path);

}  // namespace camelid
