#pragma once
// What a training step reads: rows of T input tokens and T targets (a target < 0 has no loss).
// Pretraining's rows are windows of a token stream (every target counts); fine-tuning's are
// examples whose prompt tokens are masked out (train/sft_data.h).
#include <cstdint>
#include <memory>

#include "train/data.h"

namespace camelid::train {

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual int64_t count() const = 0;  // rows
  virtual int seq_len() const = 0;    // T
  virtual size_t tokens() const = 0;  // tokens the rows were cut from (reports, trainer state)
  // Row i (0 <= i < count): T tokens and T targets.
  virtual void fill(int64_t i, int* tokens, int* targets) const = 0;
  virtual int64_t targets(int64_t i) const = 0;  // targets >= 0 in row i
};

// Windows of a stream: inputs the first T tokens of window i, targets the last T.
class WindowRows : public RowSource {
 public:
  explicit WindowRows(Windows w) : w_(std::move(w)) {}
  int64_t count() const override { return w_.count(); }
  int seq_len() const override { return w_.seq_len(); }
  size_t tokens() const override { return w_.tokens(); }
  void fill(int64_t i, int* tokens, int* targets) const override {
    const int* win = w_.window(i);
    for (int t = 0; t < w_.seq_len(); ++t) tokens[t] = win[t], targets[t] = win[t + 1];
  }
  int64_t targets(int64_t) const override { return w_.seq_len(); }

 private:
  Windows w_;
};

}  // namespace camelid::train
