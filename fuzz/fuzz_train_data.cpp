// Training data as a stranger may hand it over: a uint32 id file (any length, any ids) or a JSON
// array (any JSON), then cut into windows. The first byte picks the format and the sequence
// length. Any input must end in tokens every one of which is < vocab, or a camelid::Error.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "train/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace camelid::train;
  const DataFormat fmt = data[0] & 1 ? DataFormat::Json : DataFormat::Ids;
  const int T = 1 + (data[0] >> 1) % 16, vocab = 1000;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const std::vector<int> ids = tokens_from_bytes(bytes, fmt, nullptr, vocab, "data");
    for (int id : ids)
      if (id < 0 || id >= vocab) __builtin_trap();
    Windows w(ids, T, "data");
    WindowOrder order(w.count(), true, data[0]);
    for (int64_t g = 0; g < 3 * w.count(); ++g) {
      const int64_t i = order.at(g);
      if (i < 0 || i >= w.count() || w.window(i)[T] >= vocab) __builtin_trap();
    }
  } catch (const camelid::Error&) {
  }
  return 0;
}
