// GGUF input for `quantize` (llama-quantize's view of a file: metadata as is, tensors in its
// weight-map order) and the streaming writer both commands share.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/gguf.h"
#include "model/gguf_export.h"

namespace camelid {

namespace {

// llama_model_loader's weight_name_comparer: tensors outside a layer first, then by layer
// number ("blk.%d."), by name within a layer.
int layer_of(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000) v = v * 10 + (name[i++] - '0');
  return v;
}

// Fills rows [r0, r0 + n) of t in `type`: copied when the type is the source's, else each row
// widened/dequantized to f32 and requantized (rows in parallel: each is independent).
void produce_rows(const ExportTensor& t, DType type, int64_t r0, int64_t n, uint8_t* dst) {
  const size_t out_row = row_bytes(type, t.ne[0]);
  if (type == t.dtype) {
    for (int64_t k = 0; k < n; ++k) std::memcpy(dst + size_t(k) * out_row, t.row(r0 + k), out_row);
    return;
  }
  const DTypeInfo& src = dtype_info(t.dtype);
  const DTypeInfo& out = dtype_info(type);
#pragma omp parallel if (n > 1)
  {
    std::vector<float> buf(size_t(t.ne[0]));
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < n; ++k) {
      src.to_f32(t.row(r0 + k), buf.data(), t.ne[0]);
      out.from_f32(buf.data(), dst + size_t(k) * out_row, t.ne[0]);
    }
  }
}

gguf::Writer make_writer(const ExportModel& m, const std::vector<DType>& types) {
  if (types.size() != m.tensors.size()) fail("gguf writer: ", types.size(), " types for ", m.tensors.size(), " tensors");
  size_t alignment = gguf::kDefaultAlignment;
  if (const gguf::Value* a = gguf::find(m.metadata, "general.alignment"); a && a->is_int()) alignment = size_t(a->i);
  gguf::Writer w(alignment);
  for (auto& [k, v] : m.metadata) w.add(k, v);
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const ExportTensor* t = &m.tensors[i];
    const DType type = types[i];
    if (!dtype_info(type).from_f32 || !dtype_info(t->dtype).to_f32)
      fail("tensor '", t->name, "': cannot convert ", dtype_name(t->dtype), " to ", dtype_name(type));
    if (!row_fits(type, t->ne[0]))
      fail("tensor '", t->name, "': rows of ", t->ne[0], " values do not split into ", dtype_name(type), " blocks");
    w.add_tensor(t->name, type, t->ne, [t, type](int64_t r0, int64_t n, uint8_t* dst) { produce_rows(*t, type, r0, n, dst); });
  }
  return w;
}

}  // namespace

ExportModel export_gguf_model(const std::string& path) {
  ExportModel m;
  m.weights = load_gguf(path);  // everything a camelid load checks: architecture, shapes, types
  const ModelConfig& c = m.weights->config;
  m.n_layers = c.n_layers, m.n_heads = c.n_heads, m.n_kv_heads = c.n_kv_heads;
  std::shared_ptr<gguf::File> f = gguf::File::open(path);
  m.metadata = f->metadata();
  for (const gguf::TensorInfo& t : f->tensors()) {
    ExportTensor e;
    e.name = t.name;
    e.ne = t.ne;
    e.dtype = t.dtype;  // supported: load_gguf took every tensor
    e.data = t.data;
    m.tensors.push_back(std::move(e));
  }
  m.keep_alive = std::move(f);
  return m;
}

void prepare_for_quantize(ExportModel& m, const QuantType& q) {
  // llama-quantize copies the metadata, then sets these two: gguf_set_val removes a key and
  // appends it, so both end up last, in this order.
  for (const char* k : {"general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count"})
    gguf::erase(m.metadata, k);
  m.metadata.emplace_back("general.quantization_version", gguf::u32_value(2));
  m.metadata.emplace_back("general.file_type", gguf::u32_value(uint32_t(q.ftype)));
  std::stable_sort(m.tensors.begin(), m.tensors.end(), [](const ExportTensor& a, const ExportTensor& b) {
    const int la = layer_of(a.name), lb = layer_of(b.name);
    return la != lb ? la < lb : a.name < b.name;
  });
}

void write_gguf(const ExportModel& m, const std::vector<DType>& types, const std::string& path,
                const gguf::Writer::ProgressFn& progress) {
  make_writer(m, types).write(path, progress);
}

std::string gguf_bytes(const ExportModel& m, const std::vector<DType>& types) { return make_writer(m, types).bytes(); }

}  // namespace camelid
