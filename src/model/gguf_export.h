#pragma once
// Writing GGUF files llama.cpp loads unchanged: `convert` (a Hugging Face directory, as
// convert_hf_to_gguf.py writes it) and `quantize` (as llama-quantize writes it, from either a
// directory or a GGUF file). Both build an ExportModel (metadata in file order + tensors whose
// rows are read lazily from the memory-mapped source), pick each tensor's output type, and stream
// the file tensor by tensor (see gguf::Writer), so no model is ever held whole in memory.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "model/weights.h"

namespace camelid {

// One tensor on its way into a GGUF file: its rows as stored in the source (any dtype camelid
// reads), optionally with its rows permuted.
struct ExportTensor {
  std::string name;           // GGUF name: token_embd.weight, blk.0.attn_q.weight, ...
  std::vector<int64_t> ne;    // GGUF order: ne[0] is the row length
  DType dtype = DType::F32;   // of the source rows
  const uint8_t* data = nullptr;
  // > 0: q/k rows go from Hugging Face's rotate-half order to Meta's interleaved pairs, as
  // convert_hf_to_gguf.py's LlamaModel.permute does, with this many heads.
  int permute_heads = 0;

  int64_t rows() const;
  int64_t numel() const { return rows() * ne[0]; }
  // Source row r of the output (after the permutation).
  const uint8_t* row(int64_t r) const;
};

struct ExportModel {
  gguf::KeyValues metadata;  // in file order
  std::vector<ExportTensor> tensors;
  int n_layers = 0, n_heads = 0, n_kv_heads = 0;  // for the quantization rules
  // What the rows point into (memory maps, computed tensors such as rope_freqs).
  std::shared_ptr<ModelWeights> weights;
  std::shared_ptr<void> keep_alive;
};

// llama.cpp's file types (LLAMA_FTYPE_*), as general.file_type stores them.
enum class FileType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9, Q2_K = 10, Q3_K_S = 11,
  Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18,
  IQ4_NL = 25, IQ4_XS = 30, BF16 = 32,
};

// ---- convert ----

// Returns the tokenizer.* metadata for a directory given config.json's vocab_size (the caller
// passes tokenizer_gguf_metadata; the model layer does not depend on the tokenizer's).
using TokenizerMetadataFn = std::function<gguf::KeyValues(int64_t vocab_size)>;

// A Hugging Face Llama directory as convert_hf_to_gguf.py lays it out: general.* and llama.*
// keys, the tokenizer, tensors renamed and in its order (rope_freqs first for Llama 3.1's
// scaling, then the shards' tensors by file and name), q/k rows permuted. `type` is the output
// float type (general.file_type), DType::Count for the checkpoint's own (the type holding most
// of its parameters); the tensors keep their source dtype here (see convert_dtype).
// Throws Error naming the directory and file for a model camelid cannot load.
ExportModel export_hf_model(const std::string& dir, DType type, const TokenizerMetadataFn& tokenizer);

// The converter's type for a tensor: 1-D tensors and norms F32, the rest `type`.
DType convert_dtype(const ExportTensor& t, DType type);

// ---- quantize ----

struct QuantType {
  const char* name;       // "Q4_K_M"
  FileType ftype;
  DType default_type;     // what most tensors get
};
// The types `camelid quantize` takes; throws Error listing them on an unknown name.
const QuantType& quant_type_from_name(const std::string& name);
std::string quant_type_names();

// A GGUF file of architecture llama (any tensor types camelid reads), with its metadata as is.
ExportModel export_gguf_model(const std::string& path);

// llama-quantize's output: metadata with general.quantization_version and general.file_type
// moved to the end (as llama.cpp's gguf_set_val does) and split keys dropped; tensors sorted as
// its weight map is (non-layer tensors first, then by layer number, by name within each).
void prepare_for_quantize(ExportModel& m, const QuantType& q);

// llama.cpp's llama_tensor_get_type for a Llama (src/llama-quant.cpp, Feb 2025): the type of
// each tensor of m (in m's order, which the attn_v / ffn_down layer counters depend on).
std::vector<DType> quantize_recipe(const ExportModel& m, const QuantType& q);

// ---- writing ----

// Streams m to `path` with tensor i in types[i]: rows copied where the type is the source's,
// else widened/dequantized to f32 and converted with ggml's reference quantizers (OpenMP over
// rows). progress as gguf::Writer::write.
void write_gguf(const ExportModel& m, const std::vector<DType>& types, const std::string& path,
                const gguf::Writer::ProgressFn& progress = {});
// The same file in memory (tests).
std::string gguf_bytes(const ExportModel& m, const std::vector<DType>& types);

}  // namespace camelid
