// gguf::Writer's streamed tensors: the same file as in-memory tensors, produced a chunk of rows
// at a time (never the whole tensor at once), written through a .part file that a failure
// removes, with progress reported per chunk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/gguf.h"
#include "fixtures.h"

using namespace camelid;
using namespace camelid::gguf;
namespace fs = std::filesystem;

namespace {

using camelid::test::read_file;

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("camelid-writer-" + std::to_string(::getpid()) + "-" + name)).string();
}

// Row r of a [rows, 40] f32 tensor holds r*1000 + column.
std::vector<uint8_t> rows_bytes(int64_t rows) {
  std::vector<uint8_t> b(size_t(rows) * 40 * 4);
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < 40; ++c) {
      const float v = float(r * 1000 + c);
      std::memcpy(&b[size_t(r * 40 + c) * 4], &v, 4);
    }
  return b;
}

Writer::RowProducer rows_producer(int64_t* calls, int64_t* max_rows) {
  return [calls, max_rows](int64_t r0, int64_t n, uint8_t* dst) {
    ++*calls;
    *max_rows = std::max(*max_rows, n);
    const std::vector<uint8_t> all = rows_bytes(r0 + n);
    std::memcpy(dst, all.data() + size_t(r0) * 160, size_t(n) * 160);
  };
}

}  // namespace

TEST(GgufWriter, StreamedTensorsGiveTheSameFileAsInMemoryOnes) {
  const int64_t rows = 200000;  // 32 MB: more than one chunk
  Writer a, b;
  for (Writer* w : {&a, &b}) {
    w->add_string("general.architecture", "llama");
    w->add_u32("x.count", 7);
    w->add_tensor("small.weight", DType::F32, {3}, std::vector<uint8_t>(12, 1));  // 12 bytes: padded
  }
  a.add_tensor("big.weight", DType::F32, {40, rows}, rows_bytes(rows));
  int64_t calls = 0, max_rows = 0;
  b.add_tensor("big.weight", DType::F32, {40, rows}, rows_producer(&calls, &max_rows));
  const std::string bytes = a.bytes();
  EXPECT_TRUE(bytes == b.bytes());
  EXPECT_GT(calls, 1);
  EXPECT_LT(max_rows, rows);  // never the whole tensor at once

  const std::string path = temp_path("stream.gguf");
  std::vector<Writer::Progress> seen;
  b.write(path, [&](const Writer::Progress& p) { seen.push_back(p); });
  EXPECT_TRUE(read_file(path) == bytes);
  EXPECT_FALSE(fs::exists(path + ".part"));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().tensor, 1u);
  EXPECT_EQ(seen.back().n_tensors, 2u);
  EXPECT_EQ(seen.back().bytes_done, seen.back().bytes_total);
  EXPECT_EQ(seen.back().bytes_total, 12u + uint64_t(rows) * 160);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].bytes_done, seen[i - 1].bytes_done);
  auto f = File::open(path);
  EXPECT_EQ(f->tensor("big.weight")->ne, (std::vector<int64_t>{40, rows}));
  float v;
  std::memcpy(&v, f->tensor("big.weight")->data + (size_t(rows - 1) * 40 + 39) * 4, 4);
  EXPECT_EQ(v, float((rows - 1) * 1000 + 39));
  fs::remove(path);
}

TEST(GgufWriter, AFailingProducerLeavesNoFileBehind) {
  Writer w;
  w.add_string("general.architecture", "llama");
  w.add_tensor("t.weight", DType::F32, {4, 2}, [](int64_t, int64_t, uint8_t*) { fail("producer broke"); });
  const std::string path = temp_path("broken.gguf");
  std::ofstream(path) << "old";  // an earlier file of that name stays as it was
  EXPECT_THROW(w.write(path), Error);
  EXPECT_FALSE(fs::exists(path + ".part"));
  EXPECT_EQ(read_file(path), "old");
  fs::remove(path);
}

TEST(GgufWriter, UnwritablePathsAreErrorsNamingThePath) {
  Writer w;
  w.add_string("general.architecture", "llama");
  const std::string bad = temp_path("no-such-dir") + "/x.gguf";
  try {
    w.write(bad);
    ADD_FAILURE() << "wrote " << bad;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_writable(bad), Error);
  EXPECT_THROW(check_writable(fs::temp_directory_path().string()), Error);  // a directory
  EXPECT_NO_THROW(check_writable(temp_path("ok.gguf")));
  EXPECT_FALSE(fs::exists(temp_path("ok.gguf.part")));
}

TEST(GgufWriter, StreamedRowsMustFitTheTypesBlocks) {
  Writer w;
  EXPECT_THROW(w.add_tensor("q.weight", DType::Q8_0, {40, 2}, [](int64_t, int64_t, uint8_t*) {}), Error);
}
