#include "model/kv_cache.h"

#include <unistd.h>

#include "core/checked_size.h"
#include "core/error.h"

namespace camelid {

size_t KVCache::bytes_per_token(const ModelConfig& c, DType type) {
  return size_t(c.n_layers) * 2 * row_bytes(type, c.kv_dim());
}

KVCache::KVCache(const ModelConfig& c, int n_seqs, int ctx, DType type)
    : type_(type), n_seqs_(n_seqs), ctx_(ctx), kv_dim_(c.kv_dim()), head_dim_(c.head_dim) {
  if (n_seqs <= 0 || ctx <= 0) fail("KV cache: need n_seqs > 0 and ctx > 0, got ", n_seqs, ", ", ctx);
  if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
    fail("KV cache type ", dtype_name(type), " is not supported (f32, f16 or q8_0)");
  if (!row_fits(type, head_dim_))
    fail("KV cache type ", dtype_name(type), " needs a head size that is a multiple of ", dtype_info(type).block,
         " (this model's is ", head_dim_, "): use --kv-type f16 or f32");
  row_bytes_ = row_bytes(type, kv_dim_);
  // Sized by the model's shape (from a file) times what the user asked for: refuse clearly what
  // this machine cannot hold, rather than die zero-filling it or wrap around the size.
  const CheckedSize n = CheckedSize(c.n_layers) * n_seqs * ctx * row_bytes_;
  const CheckedSize bytes = n * 2;
  const uint64_t phys = uint64_t(::sysconf(_SC_PHYS_PAGES)) * uint64_t(::sysconf(_SC_PAGESIZE));
  if (!bytes.fits(phys))
    fail("KV cache: ", n_seqs, " sequence(s) x ", ctx, " positions x ", c.n_layers, " layers x ", kv_dim_,
         " keys/values needs ", bytes.overflowed() ? std::string("more than 2^64") : std::to_string(bytes.value() >> 20),
         " MiB, more than this machine's ", phys >> 20, " MiB of memory: use a smaller context (--ctx)");
  k_.assign(size_t(n.value()), 0);
  v_.assign(size_t(n.value()), 0);
}

void KVCache::store(int layer, int seq, int pos, const float* k, const float* v) {
  const size_t at = offset(layer, seq, pos);
  const auto& from = dtype_info(type_).from_f32;
  from(k, &k_[at], kv_dim_);
  from(v, &v_[at], kv_dim_);
}

const float* KVCache::view(const std::vector<uint8_t>& buf, int layer, int seq, int kvh, int n, std::vector<float>& scratch,
                           size_t& ld) const {
  const uint8_t* base = &buf[offset(layer, seq, 0)] + row_bytes(type_, int64_t(kvh) * head_dim_);
  if (type_ == DType::F32) {
    ld = size_t(kv_dim_);
    return reinterpret_cast<const float*>(base);
  }
  ld = size_t(head_dim_);
  scratch.resize(size_t(n) * head_dim_);
  for (int p = 0; p < n; ++p) to_f32(type_, base + size_t(p) * row_bytes_, &scratch[size_t(p) * head_dim_], size_t(head_dim_));
  return scratch.data();
}

}  // namespace camelid
