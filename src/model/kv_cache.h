#pragma once
// Keys and values of every layer for n_seqs independent sequences (slots), each up to ctx
// positions, in f32. Layout [layer][seq][pos][kv_dim] keeps one sequence's history contiguous
// for the attention loop.
#include <vector>

#include "model/config.h"

namespace camelid {

class KVCache {
 public:
  KVCache(const ModelConfig& c, int n_seqs, int ctx);

  float* k(int layer, int seq, int pos) { return k_.data() + offset(layer, seq, pos); }
  float* v(int layer, int seq, int pos) { return v_.data() + offset(layer, seq, pos); }
  int n_seqs() const { return n_seqs_; }
  int ctx() const { return ctx_; }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  size_t offset(int layer, int seq, int pos) const {
    return ((size_t(layer) * n_seqs_ + seq) * ctx_ + pos) * kv_dim_;
  }
  int n_seqs_, ctx_, kv_dim_;
  std::vector<float> k_, v_;
};

}  // namespace camelid
