#pragma once
// The in-memory Llama model every loader produces: config + weight views in their stored dtype.
// Views point into memory maps (or small owned buffers for converted tensors) held here too.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap_file.h"
#include "core/tensor.h"
#include "model/config.h"

namespace camelid {

struct LoraAdapter;  // model/lora.h

struct LayerWeights {
  Tensor attn_norm;               // [dim]            f32
  Tensor wq, wk, wv, wo;          // [q_dim, dim], [kv_dim, dim] x2, [dim, q_dim]
  Tensor ffn_norm;                // [dim]            f32
  Tensor w_gate, w_up, w_down;    // [hidden, dim] x2, [dim, hidden]
};

struct ModelWeights {
  ModelConfig config;
  std::string source;             // path it was loaded from, for messages
  std::string format;             // "safetensors" | "llama2c" | "gguf"
  Tensor embed;                   // [vocab, dim]
  std::vector<LayerWeights> layers;
  Tensor final_norm;              // [dim]            f32
  Tensor lm_head;                 // [vocab, dim] (the embedding when tied, or for a reward model)
  Tensor score;                   // [num_labels, dim]: a reward model's head (config.num_labels > 0)
  // A LoRA adapter every linear layer consults (model/lora.h: linear()); null: none.
  std::shared_ptr<const LoraAdapter> lora;
  float lora_scale = 1.f;         // --lora-scale: multiplies the adapter's alpha / r

  // Token ids whose embedding row holds NaN/Inf (sorted): refused as input and never predicted (Llama).
  std::vector<int> bad_embed_rows;
  // What the loader found suspicious but usable (load_model also prints each to stderr).
  std::vector<std::string> warnings;

  // Storage behind the views.
  std::vector<std::unique_ptr<MappedFile>> maps;
  std::vector<std::unique_ptr<std::vector<float>>> owned;
  std::vector<std::unique_ptr<HugeBuffer>> buffers;

  // Keeps `values` alive with the model and returns a [rows, cols] f32 view of it.
  Tensor own(std::vector<float> values, int64_t rows, int64_t cols);
  // A copy of t's bytes in owned (4-byte aligned) storage, same dtype and shape.
  Tensor own_copy(const Tensor& t);
  // t itself when f32, else an owned f32 copy (norms and other vectors are used every step).
  Tensor own_f32(const Tensor& t);
  // An untied input embedding's NaN/Inf rows: recorded in bad_embed_rows with a warning naming
  // `where` (those tokens are refused and never predicted; the rest of the model works).
  void note_bad_embedding_rows(const Tensor& embedding, const std::string& where);
  // Every weight once (lm_head skipped when it is the embedding), in model order.
  void visit(const std::function<void(const Tensor&)>& fn) const;
  size_t weight_bytes() const;    // bytes of all weight views
  size_t parameters() const;      // elements of all weights
  // Elements and bytes a token's activations are multiplied by: every matrix but the embedding
  // (a row lookup), the classifier included even when tied.
  size_t matmul_parameters() const;
  size_t matmul_bytes() const;
  // Regroups the quantized matrices of the layers and an untied classifier into the decode
  // kernels' panels (kernels::interleave: same bytes, same results, faster decode) where the
  // active kernels have a panel path for the type; the row-major copies' pages in the model's
  // maps are given back. For inference only: the weights' rows are no longer row-major, so
  // exporting, merging or training must use a model loaded without it. Returns the bytes moved.
  size_t interleave_for_decode();
  // The type holding most parameters (files mix types: a Q4_K_M file also holds Q6_K and F32).
  DType main_dtype() const;
};

// Loads a model from a Hugging Face directory (config.json + safetensors, single or sharded),
// a .safetensors file beside its config.json, a GGUF file (recognised by its magic, whatever its
// name: ollama keeps models as sha256-... blobs) or a llama2.c checkpoint (.bin).
// no_mmap: read the files into (huge-page) anonymous memory instead of mapping them; see MappedFile.
// Files are hostile until checked: every size is checked against the file before use, and any
// defect throws Error naming the file and tensor/field. Warnings go to stderr (and ->warnings).
std::unique_ptr<ModelWeights> load_model(const std::string& path, bool no_mmap = false);

// Format loaders behind load_model.
std::unique_ptr<ModelWeights> load_hf_dir(const std::string& dir, bool no_mmap = false);
std::unique_ptr<ModelWeights> load_llama2c(const std::string& path, bool no_mmap = false);
std::unique_ptr<ModelWeights> load_gguf(const std::string& path, bool no_mmap = false);

// In-memory forms of the loaders (for fuzzing): the same checks, with views into `data`, which
// must outlive the result. `path` names the input in errors.
// A Hugging Face model from config.json text and the bytes of one model.safetensors.
std::unique_ptr<ModelWeights> load_hf_memory(const std::string& config_json, const uint8_t* data, size_t size,
                                             const std::string& path);
// A GGUF file (data aligned as the file's general.alignment asks, at least 32 bytes).
std::unique_ptr<ModelWeights> load_gguf_memory(const uint8_t* data, size_t size, const std::string& path);
// A llama2.c checkpoint (data 4-byte aligned).
std::unique_ptr<ModelWeights> load_llama2c_memory(const uint8_t* data, size_t size, const std::string& path);

}  // namespace camelid
