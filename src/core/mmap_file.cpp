#include "core/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace camelid {

namespace {

// Opens a regular file for reading. O_NONBLOCK: opening a FIFO would otherwise wait for a writer
// forever; anything that is not a regular file (FIFO, device, directory, socket) is refused
// before a byte is read (/dev/zero would never end, /dev/stdin would wait).
int open_regular(const std::string& path, struct stat& st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, S_ISDIR(st.st_mode) ? ": is a directory, not a file" : ": not a regular file");
  }
  return fd;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, bool read_into_memory, bool populate_now) : path_(path) {
  struct stat st {};
  int fd = open_regular(path, st);
  size_ = size_t(st.st_size);
  if (size_ > 0 && read_into_memory) {
    try {
      mem_ = std::make_unique<HugeBuffer>(size_);
    } catch (const Error& e) {
      ::close(fd);
      fail(path, ": ", e.what());
    }
    uint8_t* p = mem_->data();
    size_t done = 0;
    while (done < size_) {
      ssize_t n = ::read(fd, p + done, std::min(size_ - done, size_t(1) << 30));
      if (n <= 0) {
        const int err = errno;
        mem_.reset();
        ::close(fd);
        fail(path, ": read failed after ", done, " bytes: ", n < 0 ? std::strerror(err) : "unexpected end of file");
      }
      done += size_t(n);
    }
    ::mprotect(p, size_, PROT_READ);
    data_ = p;
  } else if (size_ > 0) {
    // Map at a 2 MiB-aligned address: where the page cache holds the file in 2 MiB folios the
    // kernel can then map them with huge pages, which saves a TLB miss every 4 KiB while the
    // weights stream past.
    const size_t huge = size_t(2) << 20;
    void* area = ::mmap(nullptr, size_ + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* p = MAP_FAILED;
    if (area != MAP_FAILED) {
      uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(area) + huge - 1) / huge * huge);
      p = ::mmap(aligned, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
      // Give back the unused head and tail of the reservation.
      if (aligned > area) ::munmap(area, size_t(aligned - static_cast<uint8_t*>(area)));
      const size_t tail = size_t(static_cast<uint8_t*>(area) + size_ + huge - (aligned + size_));
      if (tail) ::munmap(aligned + size_, tail);
    }
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path, ": mmap failed: ", std::strerror(errno));
    }
    // Ask for huge pages before the first touch: pages the kernel reads in for a VM_HUGEPAGE
    // mapping come as 2 MiB folios (pages already cached stay as they are).
    ::madvise(p, size_, MADV_HUGEPAGE);
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  if (populate_now) {
    try {
      populate();
    } catch (...) {
      ::munmap(const_cast<uint8_t*>(data_), size_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }
}

void MappedFile::populate() {
  if (!data_ || mem_ || populated_) return;
  populated_ = true;
  void* p = const_cast<uint8_t*>(data_);
  if (::madvise(p, size_, MADV_POPULATE_READ) == 0) return;
  // EFAULT: pages past the end of the file; it shrank since it was opened, and touching them
  // would raise SIGBUS. Otherwise (EINVAL before Linux 5.14) touch every page instead.
  if (errno == EFAULT) fail(path_, ": cannot read the mapped file (it shrank while loading?)");
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < size_; i += 4096) sink = sink + data_[i];
}

MappedFile::~MappedFile() {
  if (data_ && !mem_) ::munmap(const_cast<uint8_t*>(data_), size_);  // mem_ frees itself
}

HugeBuffer::HugeBuffer(size_t size) : size_(size) {
  if (size == 0) return;
  const size_t huge = size_t(2) << 20;
  alloc_ = (size + huge - 1) / huge * huge;
  void* p = ::mmap(nullptr, alloc_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("cannot allocate ", size, " bytes: ", std::strerror(errno));
  ::madvise(p, alloc_, MADV_HUGEPAGE);
  data_ = static_cast<uint8_t*>(p);
}

HugeBuffer::~HugeBuffer() {
  if (data_) ::munmap(data_, alloc_);
}

void release_pages(const void* p, size_t n) {
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void evict_from_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // a FIFO must not block us
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  struct stat st {};
  const int fd = open_regular(path, st);
  // Read to the end rather than trusting st_size (files in /proc say 0), up to the limit.
  std::string out;
  if (size_t(st.st_size) <= max_bytes) out.reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail(path, ": read failed: ", std::strerror(err));
    }
    if (n == 0) break;
    if (size_t(n) > max_bytes - out.size()) {
      ::close(fd);
      fail(path, ": larger than the ", max_bytes, "-byte limit for this file");
    }
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

}  // namespace camelid
