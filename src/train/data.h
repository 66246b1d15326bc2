#pragma once
// Training data: a token stream (text files tokenized with the model's tokenizer, little-endian
// uint32 id files, or JSON arrays of ids) cut into windows of T+1 tokens at stride T (inputs the
// first T, targets the last T), and the order in which optimizer steps visit them.
#include <cstdint>
#include <string>
#include <vector>

namespace camelid {
class Tokenizer;
}

namespace camelid::train {

enum class DataFormat { Auto, Text, Ids, Json };
DataFormat data_format_from_name(const std::string& name);  // auto | text | ids | json; throws Error

// The format of `path` under `fmt`: Auto is Ids for .bin/.u32, Json for .json, else Text.
DataFormat resolve_format(const std::string& path, DataFormat fmt);

// Reads one file's tokens. Ids: little-endian uint32 (size not a multiple of 4 is an error naming
// the file); Json: an array of non-negative integers; Text: the whole file is one document,
// encoded without the tokenizer's own specials, with BOS (when the tokenizer has one) before it.
// Every id must be < vocab (an error names the file and position). tok may be null unless Text.
std::vector<int> read_tokens(const std::string& path, DataFormat fmt, const Tokenizer* tok, int vocab);

// The same from the file's bytes (fmt resolved; `path` names it in errors).
std::vector<int> tokens_from_bytes(const std::string& bytes, DataFormat fmt, const Tokenizer* tok, int vocab,
                                   const std::string& path);

// Concatenation of every file's tokens, in order.
std::vector<int> read_stream(const std::vector<std::string>& paths, DataFormat fmt, const Tokenizer* tok, int vocab);

// Windows of T+1 tokens at stride T over a stream: n = (size - 1) / T of them.
class Windows {
 public:
  // Throws Error (naming `what`) when the stream has fewer than T+1 tokens.
  Windows(std::vector<int> stream, int T, const std::string& what);
  int64_t count() const { return n_; }
  int seq_len() const { return T_; }
  size_t tokens() const { return stream_.size(); }
  const int* window(int64_t i) const { return stream_.data() + size_t(i) * size_t(T_); }  // T+1 tokens

 private:
  std::vector<int> stream_;
  int T_;
  int64_t n_;
};

// Which window a global row visits. Row g = s*B + b (step s, row b of the step's B global rows,
// B = batch x grad-accum, micro-batch a holding rows a*batch .. a*batch+batch-1): with no shuffle
// window g mod n; with shuffle, epoch e = g / n visits a seeded permutation of 0..n-1:
// window perm_e[g mod n]. The permutation is Fisher-Yates with a splitmix64 stream seeded from
// (seed, e), so the same seed gives the same order on every host.
class WindowOrder {
 public:
  WindowOrder(int64_t n, bool shuffle, uint64_t seed) : n_(n), shuffle_(shuffle), seed_(seed) {}
  int64_t at(int64_t g);

 private:
  int64_t n_;
  bool shuffle_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

// Splits off the last `fraction` of a stream (0 < fraction < 1) as held-out data.
std::vector<int> split_tail(std::vector<int>& stream, double fraction);

}  // namespace camelid::train
