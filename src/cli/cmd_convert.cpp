// `camelid convert`: a Hugging Face Llama directory to a GGUF file, written as llama.cpp's
// convert_hf_to_gguf.py writes it (so llama.cpp, ollama and camelid load it unchanged).
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "model/gguf_export.h"
#include "tokenizer/tokenizer_to_gguf.h"

namespace camelid::cli {
namespace {

struct ConvertArgs {
  std::string dir, out, type;
  bool progress = false;
};

// The directory's tokenizer as GGUF metadata; a directory without one (a random test model)
// converts all the same, with a warning: llama.cpp needs a vocabulary to load the file.
TokenizerMetadataFn tokenizer_for(const std::string& dir) {
  return [dir](int64_t vocab_size) -> gguf::KeyValues {
    if (has_tokenizer_files(dir)) return tokenizer_gguf_metadata(dir, vocab_size);
    std::fprintf(stderr, "warning: %s has no tokenizer.model or tokenizer.json: the GGUF file will have no tokenizer "
                 "(camelid runs it with --ids; llama.cpp needs one)\n", dir.c_str());
    return {};
  };
}

DType float_type(const std::string& name) {
  if (name.empty()) return DType::Count;
  DType t = DType::Count;
  try {
    t = dtype_from_name(name);
  } catch (const Error&) {
  }
  if (t != DType::F32 && t != DType::F16 && t != DType::BF16)
    fail("--type '", printable_name(name), "' is not f32, f16 or bf16 (quantized types: `camelid quantize`)");
  return t;
}

void run(const ConvertArgs& a) {
  const DType type = float_type(a.type);
  gguf::check_writable(a.out);
  const auto t0 = std::chrono::steady_clock::now();
  ExportModel m = export_hf_model(a.dir, type, tokenizer_for(a.dir));
  const DType out_type = type == DType::Count ? m.weights->main_dtype() : type;
  std::vector<DType> types;
  for (const ExportTensor& t : m.tensors) types.push_back(convert_dtype(t, out_type));
  {
    ProgressBar bar(a.progress);
    write_gguf(m, types, a.out, bar.callback());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %zu tensors, %s, %zu metadata keys (%.1f s)\n", a.out.c_str(), m.tensors.size(), dtype_name(out_type),
              m.metadata.size(), secs);
}

const bool reg_convert = add_command([](CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* sub = app.add_subcommand("convert", "Convert a Hugging Face Llama directory to GGUF (as llama.cpp's converter does)");
  sub->add_option("model_dir", a->dir, "Hugging Face model directory (config.json, safetensors, tokenizer files)")->required();
  sub->add_option("out", a->out, "output .gguf file")->required();
  sub->add_option("--type", a->type, "f32 | f16 | bf16 (default: the checkpoint's own)");
  sub->add_flag("--progress", a->progress, "progress bar on stderr even when it is not a terminal");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
