// MappedFile (mapped, or read into huge-page memory), HugeBuffer and release_pages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mmap_file.h"

using namespace camelid;
namespace fs = std::filesystem;

namespace {

fs::path write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const fs::path p = fs::temp_directory_path() / (name + "." + std::to_string(::getpid()));
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return p;
}

TEST(MappedFile, MappedAndReadIntoMemoryGiveTheSameBytes) {
  std::vector<uint8_t> bytes(3 * 4096 + 17);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 31 + 7);
  const fs::path p = write_file("camelid_mmap_test", bytes);
  for (bool in_memory : {false, true}) {
    MappedFile f(p.string(), in_memory);
    ASSERT_EQ(f.size(), bytes.size());
    EXPECT_EQ(0, std::memcmp(f.data(), bytes.data(), bytes.size())) << (in_memory ? "read into memory" : "mapped");
  }
  MappedFile empty(write_file("camelid_mmap_empty", {}).string(), true);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.data(), nullptr);
  fs::remove(p);
}

TEST(MappedFile, RefusesWhatIsNotARegularFile) {
  for (bool in_memory : {false, true}) {
    try {
      MappedFile f("/nonexistent/camelid.gguf", in_memory);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("/nonexistent/camelid.gguf"), std::string::npos) << e.what();
    }
    EXPECT_THROW(MappedFile(fs::temp_directory_path().string(), in_memory), Error);
  }
}

TEST(HugeBuffer, WritableAndSizedAsAsked) {
  HugeBuffer none(0);
  EXPECT_EQ(none.data(), nullptr);
  HugeBuffer b(5 << 20);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(b.size(), size_t(5) << 20);
  std::memset(b.data(), 0xAB, b.size());
  EXPECT_EQ(b.data()[b.size() - 1], 0xAB);
}

// Released pages of a file map read the file's bytes again; bytes outside whole pages are untouched.
TEST(ReleasePages, AFileMapReadsTheFileAgain) {
  std::vector<uint8_t> bytes(8 * 4096);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 13 + 1);
  const fs::path p = write_file("camelid_release_test", bytes);
  MappedFile f(p.string());
  release_pages(f.data() + 100, 5 * 4096);
  EXPECT_EQ(0, std::memcmp(f.data(), bytes.data(), bytes.size()));
  release_pages(f.data(), 0);  // nothing whole: a no-op
  fs::remove(p);
}

}  // namespace
