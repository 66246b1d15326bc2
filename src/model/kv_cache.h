#pragma once
// Keys and values of every layer for n_seqs independent sequences (slots), each up to ctx
// positions. Layout [layer][seq][pos][kv_dim] keeps one sequence's history contiguous for the
// attention loop. Stored as f32, f16 or q8_0 (blocks of 32 inside each head): what a long
// context costs is bytes_per_token() x positions x sequences.
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace camelid {

class KVCache {
 public:
  // Throws Error when the type cannot hold this model's heads (q8_0 needs head_dim % 32 == 0)
  // or the cache would not fit this machine's memory.
  KVCache(const ModelConfig& c, int n_seqs, int ctx, DType type = DType::F32);

  DType type() const { return type_; }
  int n_seqs() const { return n_seqs_; }
  int ctx() const { return ctx_; }
  size_t bytes() const { return k_.size() + v_.size(); }
  // Bytes one position of one sequence takes over all layers (keys and values).
  static size_t bytes_per_token(const ModelConfig& c, DType type);

  // Stores one position's keys and values (kv_dim f32 each), converted to the cache type.
  void store(int layer, int seq, int pos, const float* k, const float* v);

  // Keys (or values) of kv head `kvh` at positions [0, n) of a sequence as f32 rows `ld` apart:
  // pointers into the cache when it is f32, else widened into `scratch`.
  const float* keys(int layer, int seq, int kvh, int n, std::vector<float>& scratch, size_t& ld) const {
    return view(k_, layer, seq, kvh, n, scratch, ld);
  }
  const float* values(int layer, int seq, int kvh, int n, std::vector<float>& scratch, size_t& ld) const {
    return view(v_, layer, seq, kvh, n, scratch, ld);
  }

 private:
  size_t offset(int layer, int seq, int pos) const {
    return ((size_t(layer) * n_seqs_ + seq) * ctx_ + pos) * row_bytes_;
  }
  const float* view(const std::vector<uint8_t>& buf, int layer, int seq, int kvh, int n, std::vector<float>& scratch,
                    size_t& ld) const;

  DType type_;
  int n_seqs_, ctx_, kv_dim_, head_dim_;
  size_t row_bytes_;
  std::vector<uint8_t> k_, v_;
};

}  // namespace camelid
