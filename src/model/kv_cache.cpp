#include "model/kv_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/checked_size.h"
#include "core/error.h"
#include "kernels/kernels.h"

namespace camelid {

size_t KVCache::bytes_per_token(const ModelConfig& c, DType type) {
  return size_t(c.n_layers) * 2 * row_bytes(type, c.kv_dim());
}

KVCache::KVCache(const ModelConfig& c, int n_seqs, int ctx, DType type, long budget_tokens)
    : type_(type), n_seqs_(n_seqs), ctx_(ctx), kv_dim_(c.kv_dim()), head_dim_(c.head_dim), n_layers_(c.n_layers) {
  if (n_seqs <= 0 || ctx <= 0) fail("KV cache: need n_seqs > 0 and ctx > 0, got ", n_seqs, ", ", ctx);
  if (budget_tokens < 0) fail("KV cache: the budget must be >= 0 positions, got ", budget_tokens);
  if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
    fail("KV cache type ", dtype_name(type), " is not supported (f32, f16 or q8_0)");
  if (!row_fits(type, head_dim_))
    fail("KV cache type ", dtype_name(type), " needs a head size that is a multiple of ", dtype_info(type).block,
         " (this model's is ", head_dim_, "): use --kv-type f16 or f32");
  row_bytes_ = row_bytes(type, kv_dim_);
  // Sized by the model's shape (from a file) times what the user asked for: refuse clearly what
  // this machine cannot hold, rather than die filling it or wrap around the size.
  // Default: every sequence can hold its whole context (in whole blocks).
  const CheckedSize positions = CheckedSize(budget_tokens > 0 ? budget_tokens : full_positions(n_seqs, ctx));
  const CheckedSize bytes = CheckedSize(c.n_layers) * positions * row_bytes_ * 2;
  const uint64_t phys = uint64_t(::sysconf(_SC_PHYS_PAGES)) * uint64_t(::sysconf(_SC_PAGESIZE));
  if (!bytes.fits(phys) || !positions.fits(uint64_t(INT32_MAX) * kBlockSize)) {
    const std::string need = bytes.overflowed() ? std::string("more than 2^64") : std::to_string(bytes.value() >> 20);
    if (budget_tokens > 0)
      fail("KV cache: a budget of ", budget_tokens, " positions x ", c.n_layers, " layers x ", kv_dim_,
           " keys/values needs ", need, " MiB, more than this machine's ", phys >> 20, " MiB of memory: use a smaller --kv-budget");
    fail("KV cache: ", n_seqs, " sequence(s) x ", ctx, " positions x ", c.n_layers, " layers x ", kv_dim_,
         " keys/values needs ", need, " MiB, more than this machine's ", phys >> 20, " MiB of memory: use a smaller context (--ctx)");
  }
  max_blocks_ = blocks_for(long(positions.value()));
  ctx_ = int(std::min<long>(ctx, capacity_tokens()));
  half_bytes_ = size_t(n_layers_) * kBlockSize * row_bytes_;
  block_bytes_ = 2 * half_bytes_;
  tables_.resize(size_t(n_seqs));
  chains_.resize(size_t(n_seqs));
}

KVCache::~KVCache() = default;

int KVCache::allocate() {
  int b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (int(blocks_.size()) < max_blocks_) {
    b = int(blocks_.size());
    blocks_.emplace_back();
    blocks_.back().data.reset(new uint8_t[block_bytes_]());
  } else if (!lru_.empty()) {  // the cached block unused the longest
    b = lru_.begin()->second;
    lru_.erase(lru_.begin());
    unpublish(b);
  } else {
    fail("KV cache is full: all ", max_blocks_, " blocks of ", kBlockSize, " positions (", capacity_tokens(),
         " tokens) are in use (raise --kv-budget)");
  }
  blocks_[size_t(b)].refs = 1;
  return b;
}

void KVCache::unref(int b) {
  Block& k = blocks_[size_t(b)];
  if (--k.refs > 0) return;
  if (k.published) {
    k.last_use = ++clock_;
    lru_.insert({k.last_use, b});
  } else {
    free_.push_back(b);
  }
}

void KVCache::unpublish(int b) {
  Block& k = blocks_[size_t(b)];
  if (!k.published) return;
  auto [lo, hi] = index_.equal_range(k.hash);
  for (auto it = lo; it != hi; ++it)
    if (it->second == b) {
      index_.erase(it);
      break;
    }
  k.published = false;
  k.tokens.clear();
}

void KVCache::prepare(int seq, int pos) {
  std::vector<int>& t = tables_[size_t(seq)];
  const size_t i = size_t(pos) / kBlockSize;
  while (t.size() <= i) t.push_back(allocate());
  const int b = t[i];
  std::vector<uint64_t>& chain = chains_[size_t(seq)];
  if (chain.size() > i) chain.resize(i);  // this block's tokens change: it and what follows leave the chain
  if (blocks_[size_t(b)].refs > 1) {      // shared: write into a copy
    const int copy = allocate();
    std::memcpy(blocks_[size_t(copy)].data.get(), blocks_[size_t(b)].data.get(), block_bytes_);
    unref(b);
    t[i] = copy;
  } else {
    unpublish(b);
  }
}

void KVCache::store(int layer, int seq, int pos, const float* k, const float* v) {
  const int b = tables_[size_t(seq)][size_t(pos) / kBlockSize];
  const auto& from = dtype_info(type_).from_f32;
  from(k, const_cast<uint8_t*>(row(0, layer, b, pos % kBlockSize)), kv_dim_);
  from(v, const_cast<uint8_t*>(row(1, layer, b, pos % kBlockSize)), kv_dim_);
}

const float* KVCache::view(int kv, int layer, int seq, int kvh, int n, std::vector<float>& scratch, size_t& ld) const {
  const std::vector<int>& t = tables_[size_t(seq)];
  const size_t head = row_bytes(type_, int64_t(kvh) * head_dim_);  // a head's offset inside a row
  if (type_ == DType::F32 && n <= kBlockSize) {
    ld = size_t(kv_dim_);
    return reinterpret_cast<const float*>(row(kv, layer, t[0], 0) + head);
  }
  ld = size_t(head_dim_);
  scratch.resize(size_t(n) * head_dim_);
  for (int p0 = 0; p0 < n; p0 += kBlockSize) {
    const int b = t[size_t(p0) / kBlockSize], m = std::min(kBlockSize, n - p0);
    for (int p = 0; p < m; ++p) {
      const uint8_t* src = row(kv, layer, b, p) + head;
      float* dst = &scratch[size_t(p0 + p) * head_dim_];
      if (type_ == DType::F32) std::memcpy(dst, src, size_t(head_dim_) * sizeof(float));
      else kernels::widen(type_, src, dst, size_t(head_dim_));
    }
  }
  return scratch.data();
}

bool KVCache::in_place(int kv, int layer, int seq, int kvh, int n, std::vector<const float*>& blocks,
                       kernels::KVRows& out) const {
  static_assert(kBlockSize == 16, "KVRows addresses blocks by shift");
  if (type_ != DType::F32) return false;
  const std::vector<int>& t = tables_[size_t(seq)];
  const size_t head = size_t(kvh) * head_dim_ * sizeof(float);
  blocks.resize(size_t(blocks_for(n)));
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = reinterpret_cast<const float*>(row(kv, layer, t[i], 0) + head);
  out = kernels::KVRows{blocks.data(), 4, size_t(kv_dim_)};
  return true;
}

void KVCache::release(int seq) {
  std::vector<int>& t = tables_[size_t(seq)];
  // Last block first: a chain's tail is then evicted before its head (which other prompts share more).
  for (auto it = t.rbegin(); it != t.rend(); ++it) unref(*it);
  t.clear();
  chains_[size_t(seq)].clear();
}

int KVCache::truncate(int seq, int n) {
  std::vector<int>& t = tables_[size_t(seq)];
  n = std::max(0, n);
  size_t keep = std::min(t.size(), size_t(blocks_for(n)));
  if (n % kBlockSize != 0 && keep == size_t(blocks_for(n)) && blocks_[size_t(t[keep - 1])].refs > 1) {
    --keep;  // the partly kept block is shared: recompute its positions rather than copy it
    n = int(keep) * kBlockSize;
  }
  n = std::min<long>(n, long(keep) * kBlockSize);
  while (t.size() > keep) {
    unref(t.back());
    t.pop_back();
  }
  // The partly kept block will be overwritten past n: unpublished now, so that no other sequence
  // maps it meanwhile (its write would then need a copy, a block nobody reserved).
  if (n % kBlockSize != 0) unpublish(t[keep - 1]);
  std::vector<uint64_t>& chain = chains_[size_t(seq)];
  if (chain.size() > size_t(n) / kBlockSize) chain.resize(size_t(n) / kBlockSize);
  return n;
}

uint64_t KVCache::key_hash(uint64_t parent, const int* tokens) {
  uint64_t h = parent * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;  // FNV-1a-like mix over the ids
  for (int i = 0; i < kBlockSize; ++i) {
    h ^= uint64_t(uint32_t(tokens[i]));
    h *= 0x100000001B3ULL;
    h ^= h >> 29;
  }
  return h;
}

int KVCache::find(uint64_t parent, const int* tokens) const {
  auto [lo, hi] = index_.equal_range(key_hash(parent, tokens));
  for (auto it = lo; it != hi; ++it) {  // the hash only narrows the search: keys are compared whole
    const Block& k = blocks_[size_t(it->second)];
    if (k.parent == parent && std::equal(k.tokens.begin(), k.tokens.end(), tokens)) return it->second;
  }
  return -1;
}

int KVCache::match_prefix(const int* tokens, int n, int* idle) const {
  uint64_t parent = 0;
  int m = 0, unused = 0;
  for (; (m + 1) * kBlockSize <= n; ++m) {
    const int b = find(parent, tokens + size_t(m) * kBlockSize);
    if (b < 0) break;
    unused += blocks_[size_t(b)].refs == 0;
    parent = blocks_[size_t(b)].uid;
  }
  if (idle) *idle = unused;
  return m;
}

int KVCache::attach_prefix(int seq, const int* tokens, int n_blocks) {
  std::vector<int>& t = tables_[size_t(seq)];
  std::vector<uint64_t>& chain = chains_[size_t(seq)];
  if (!t.empty()) fail("KV cache: attach_prefix needs an empty sequence");
  uint64_t parent = 0;
  for (int m = 0; m < n_blocks; ++m) {
    const int b = find(parent, tokens + size_t(m) * kBlockSize);
    if (b < 0) break;
    Block& k = blocks_[size_t(b)];
    if (k.refs++ == 0) lru_.erase({k.last_use, b});
    t.push_back(b);
    chain.push_back(k.uid);
    parent = k.uid;
  }
  return int(t.size());
}

void KVCache::publish(int seq, const int* tokens, int n) {
  const std::vector<int>& t = tables_[size_t(seq)];
  std::vector<uint64_t>& chain = chains_[size_t(seq)];
  const size_t full = std::min(t.size(), size_t(std::max(0, n)) / kBlockSize);
  for (size_t j = chain.size(); j < full; ++j) {
    const int* ids = tokens + j * kBlockSize;
    const uint64_t parent = j == 0 ? 0 : chain[j - 1];
    const int same = find(parent, ids);
    if (same >= 0) {  // already cached (computed by another sequence): continue its chain
      chain.push_back(blocks_[size_t(same)].uid);
      continue;
    }
    Block& k = blocks_[size_t(t[j])];
    if (k.published) break;  // cannot happen: a table's published blocks are all in its chain
    k.published = true;
    k.uid = next_uid_++;
    k.parent = parent;
    k.hash = key_hash(parent, ids);
    k.tokens.assign(ids, ids + kBlockSize);
    index_.emplace(k.hash, t[j]);
    chain.push_back(k.uid);
  }
}

}  // namespace camelid
