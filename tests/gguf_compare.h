#pragma once
// Key-by-key and tensor-by-tensor comparison of two GGUF files (for the convert/quantize tests
// against files llama.cpp wrote), reporting the first difference by name.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "core/gguf.h"

namespace camelid::test {

inline bool same_value(const gguf::Value& a, const gguf::Value& b) {
  if (a.type != b.type) return false;
  if (a.type != gguf::ValueType::Array)
    return a.i == b.i && a.u == b.u && (a.f == b.f || (a.f != a.f && b.f != b.f)) && a.str == b.str;
  if (a.elem != b.elem || a.ints != b.ints || a.strs != b.strs || a.arrays.size() != b.arrays.size()) return false;
  if (a.floats.size() != b.floats.size()) return false;
  for (size_t i = 0; i < a.floats.size(); ++i)  // bit patterns: -0.0 and NaNs count
    if (std::memcmp(&a.floats[i], &b.floats[i], sizeof(double)) != 0) return false;
  for (size_t i = 0; i < a.arrays.size(); ++i)
    if (!same_value(a.arrays[i], b.arrays[i])) return false;
  return true;
}

// Expects `ours` to hold the same metadata as `ref` (same keys in the same order, same types
// and values), except `skip` keys, and the same tensors (names, order, dims, types, data bytes).
inline void expect_same_gguf(const gguf::File& ours, const gguf::File& ref, const std::set<std::string>& skip = {},
                             bool compare_data = true) {
  std::vector<const std::pair<std::string, gguf::Value>*> a, b;
  for (auto& kv : ours.metadata())
    if (!skip.count(kv.first)) a.push_back(&kv);
  for (auto& kv : ref.metadata())
    if (!skip.count(kv.first)) b.push_back(&kv);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i >= a.size()) {
      ADD_FAILURE() << "missing key " << b[i]->first;
      break;
    }
    if (i >= b.size()) {
      ADD_FAILURE() << "extra key " << a[i]->first;
      break;
    }
    ASSERT_EQ(a[i]->first, b[i]->first) << "metadata key #" << i;
    EXPECT_TRUE(same_value(a[i]->second, b[i]->second))
        << a[i]->first << ": ours " << gguf::value_summary(a[i]->second) << " (" << gguf::value_type_name(a[i]->second.type)
        << "), reference " << gguf::value_summary(b[i]->second) << " (" << gguf::value_type_name(b[i]->second.type) << ")";
  }
  ASSERT_EQ(ours.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ours.tensors().size(); ++i) {
    const gguf::TensorInfo& x = ours.tensors()[i];
    const gguf::TensorInfo& y = ref.tensors()[i];
    ASSERT_EQ(x.name, y.name) << "tensor #" << i;
    EXPECT_EQ(x.ne, y.ne) << x.name;
    EXPECT_EQ(x.ggml_type, y.ggml_type) << x.name;
    if (!compare_data) continue;
    ASSERT_EQ(x.nbytes, y.nbytes) << x.name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << x.name << ": data differs";
  }
}

}  // namespace camelid::test
