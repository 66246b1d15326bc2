#pragma once
// Keys and values of every layer for n_seqs independent sequences (slots), each up to ctx
// positions, in a paged pool: fixed blocks of kBlockSize positions (every layer's keys and values
// of those positions), allocated when a position is first stored, and a block table per sequence
// mapping its positions to blocks. Memory follows the positions held, up to a budget; several
// sequences may map the same block (a shared prefix). Stored as f32, f16 or q8_0 (blocks of 32
// inside each head): a position costs bytes_per_token().
//
// Prefix cache: full blocks are published under the exact tokens they hold and the block before
// them (a chain), so a later sequence whose tokens start the same way maps them instead of
// recomputing them. A published block nobody maps stays cached until the pool needs room (least
// recently used first). Shared blocks are full and never written again: a write to one (a rewind)
// copies it first.
#include <cstdint>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "model/config.h"

namespace camelid {

class KVCache {
 public:
  // 16 positions: a shared prefix is reused up to its last full block (at most 15 tokens of a
  // prompt recomputed, at most 15 positions per sequence allocated and unused), yet a block holds
  // every layer (e.g. 16 x 12 layers x 2 x 128 x f16 = 96 KiB), so tables and bookkeeping stay
  // small next to the data.
  static constexpr int kBlockSize = 16;

  // budget_tokens: positions the pool may hold over all sequences (rounded up to whole blocks);
  // 0: n_seqs x ctx (every sequence full). ctx is clamped to the budget. Throws Error when the type
  // cannot hold this model's heads (q8_0 needs head_dim % 32 == 0) or the budget would not fit
  // this machine's memory.
  KVCache(const ModelConfig& c, int n_seqs, int ctx, DType type = DType::F32, long budget_tokens = 0);
  ~KVCache();
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  DType type() const { return type_; }
  int n_seqs() const { return n_seqs_; }
  int ctx() const { return ctx_; }
  // Bytes of the blocks allocated now (the pool grows on demand and keeps what it allocated).
  size_t bytes() const { return blocks_.size() * block_bytes_; }
  size_t budget_bytes() const { return size_t(max_blocks_) * block_bytes_; }
  size_t block_bytes() const { return block_bytes_; }
  int max_blocks() const { return max_blocks_; }
  long capacity_tokens() const { return long(max_blocks_) * kBlockSize; }
  // Bytes one position of one sequence takes over all layers (keys and values).
  static size_t bytes_per_token(const ModelConfig& c, DType type);
  static int blocks_for(long positions) { return int((positions + kBlockSize - 1) / kBlockSize); }
  // Positions the pool holds without a budget: every sequence's whole context, in whole blocks.
  static long full_positions(int n_seqs, int ctx) { return long(n_seqs) * blocks_for(ctx) * kBlockSize; }

  // Makes position `pos` of `seq` writable: maps blocks up to it (allocating them; throws Error
  // when the budget is spent) and copies a shared block that holds it. Called by the forward pass
  // for every row before any store.
  void prepare(int seq, int pos);
  // Stores one position's keys and values (kv_dim f32 each), converted to the cache type.
  void store(int layer, int seq, int pos, const float* k, const float* v);

  // Keys (or values) of kv head `kvh` at positions [0, n) of a sequence as f32 rows `ld` apart:
  // a pointer into the cache when it is f32 and the range lies in one block, else gathered (or
  // widened) into `scratch`. Thread-safe against other views; positions must be prepared.
  const float* keys(int layer, int seq, int kvh, int n, std::vector<float>& scratch, size_t& ld) const {
    return view(0, layer, seq, kvh, n, scratch, ld);
  }
  const float* values(int layer, int seq, int kvh, int n, std::vector<float>& scratch, size_t& ld) const {
    return view(1, layer, seq, kvh, n, scratch, ld);
  }

  // The same positions read in place, block by block (attention takes them so, with the bits it
  // gives the contiguous view): f32 caches only; false for the others, which view() widens.
  bool keys_in_place(int layer, int seq, int kvh, int n, std::vector<const float*>& blocks, kernels::KVRows& out) const {
    return in_place(0, layer, seq, kvh, n, blocks, out);
  }
  bool values_in_place(int layer, int seq, int kvh, int n, std::vector<const float*>& blocks, kernels::KVRows& out) const {
    return in_place(1, layer, seq, kvh, n, blocks, out);
  }

  // Block accounting, for admission control.
  int blocks_held(int seq) const { return int(tables_[size_t(seq)].size()); }
  // Blocks an allocation can get: free ones, ones not allocated yet, cached ones nobody maps.
  int blocks_available() const { return int(free_.size() + lru_.size()) + (max_blocks_ - int(blocks_.size())); }
  int blocks_cached() const { return int(lru_.size()); }  // published, mapped by no sequence
  // Drops every block of seq's table (published ones stay cached).
  void release(int seq);
  // Keeps positions [0, n) of seq and drops the blocks past them; the block holding position n
  // is dropped too when another sequence maps it (it would need a copy), else unpublished (it
  // will be overwritten). Returns the positions kept.
  int truncate(int seq, int n);

  // Full blocks of published tokens that start tokens[0, n) (at most n / kBlockSize); *idle
  // (optional) gets how many of them no sequence maps now.
  int match_prefix(const int* tokens, int n, int* idle = nullptr) const;
  // Maps the first n_blocks matching blocks into seq's (empty) table; returns how many it mapped.
  int attach_prefix(int seq, const int* tokens, int n_blocks);
  // Publishes seq's full blocks inside positions [0, n), whose tokens are tokens[0, n).
  void publish(int seq, const int* tokens, int n);

 private:
  struct Block {
    std::unique_ptr<uint8_t[]> data;  // keys [layer][pos][kv_dim], then values
    int refs = 0;                     // tables mapping it
    bool published = false;
    uint64_t uid = 0, parent = 0, hash = 0;  // published: its key (parent = the uid before it)
    uint64_t last_use = 0;
    std::vector<int> tokens;
  };
  const float* view(int kv, int layer, int seq, int kvh, int n, std::vector<float>& scratch, size_t& ld) const;
  bool in_place(int kv, int layer, int seq, int kvh, int n, std::vector<const float*>& blocks, kernels::KVRows& out) const;
  const uint8_t* row(int kv, int layer, int block, int pos_in_block) const {
    return blocks_[size_t(block)].data.get() + size_t(kv) * half_bytes_ +
           (size_t(layer) * kBlockSize + size_t(pos_in_block)) * row_bytes_;
  }
  int allocate();
  void unref(int block);
  void unpublish(int block);
  int find(uint64_t parent, const int* tokens) const;  // published block, or -1
  static uint64_t key_hash(uint64_t parent, const int* tokens);

  DType type_;
  int n_seqs_, ctx_, kv_dim_, head_dim_, n_layers_, max_blocks_;
  size_t row_bytes_, half_bytes_, block_bytes_;
  std::vector<Block> blocks_;
  std::vector<int> free_;                        // refs 0, unpublished
  std::set<std::pair<uint64_t, int>> lru_;       // refs 0, published: (last_use, block)
  std::unordered_multimap<uint64_t, int> index_; // hash -> published block
  std::vector<std::vector<int>> tables_;         // seq -> blocks of positions [16 i, 16 i + 16)
  std::vector<std::vector<uint64_t>> chains_;    // seq -> uids of its published leading blocks
  uint64_t next_uid_ = 1, clock_ = 0;
};

}  // namespace camelid
