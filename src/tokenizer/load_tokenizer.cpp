// Tokenizer::load: find the tokenizer files of a model directory and apply tokenizer_config.json;
// or read a GGUF file's own tokenizer metadata.
#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace camelid {
namespace fs = std::filesystem;

namespace {

struct Files {
  std::string tokenizer;  // tokenizer.json or tokenizer.model
  std::string config;     // tokenizer_config.json, or empty
};

Files find_files(const std::string& path) {
  // error_code forms: a path we may not stat (permissions, a loop of links) is "not found", not
  // a std::filesystem_error escaping to the caller.
  std::error_code ec;
  auto is_file = [&](const fs::path& p) { return fs::is_regular_file(p, ec); };
  Files f;
  fs::path dir;
  if (fs::is_directory(path, ec)) {
    dir = path;
    for (const char* name : {"tokenizer.json", "tokenizer.model"})
      if (is_file(dir / name)) { f.tokenizer = (dir / name).string(); break; }
  } else if (is_file(path)) {
    dir = fs::path(path).parent_path();
    f.tokenizer = path;
  } else {
    fail(path, fs::exists(path, ec) ? ": not a regular file or directory" : ": no such file or directory");
  }
  if (is_file(dir / "tokenizer_config.json")) f.config = (dir / "tokenizer_config.json").string();
  return f;
}

}  // namespace

bool Tokenizer::available(const std::string& path) {
  try {
    return !find_files(path).tokenizer.empty();
  } catch (const Error&) {
    return false;
  }
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  const Files f = find_files(path);
  if (f.tokenizer.empty()) fail(path, ": no tokenizer.json or tokenizer.model found");
  // A GGUF file (recognised by content) carries the whole tokenizer: no config beside it applies.
  if (gguf::File::sniff(f.tokenizer)) return std::make_unique<Tokenizer>(tokenizer_spec_from_gguf(*gguf::File::open(f.tokenizer)));
  const std::string name = fs::path(f.tokenizer).filename().string();
  TokenizerSpec spec;
  if (name == "tokenizer_config.json") fail(f.tokenizer, ": this is the tokenizer's config; pass tokenizer.json, tokenizer.model or the model directory");
  if (fs::path(f.tokenizer).extension() == ".json") spec = load_tokenizer_json(f.tokenizer);
  else spec = load_sentencepiece_model(f.tokenizer);
  if (f.config.empty()) return std::make_unique<Tokenizer>(std::move(spec));
  return std::make_unique<Tokenizer>(std::move(spec), read_tokenizer_config(f.config));
}

void Tokenizer::apply_config(const TokenizerConfig& cfg) {
  const int bos = cfg.bos_token.empty() ? -1 : token_id(cfg.bos_token);
  const int eos = cfg.eos_token.empty() ? -1 : token_id(cfg.eos_token);
  if (bos >= 0 && spec_.bos_id < 0) spec_.bos_id = bos;
  if (eos >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), eos) == eos_ids_.end()) eos_ids_.push_back(eos);
  if (spec_.eos_id < 0) spec_.eos_id = eos;
  // A SentencePiece model has no post-processor: the config says whether BOS/EOS are added.
  if (spec_.source.size() >= 6 && spec_.source.compare(spec_.source.size() - 6, 6, ".model") == 0) {
    if (cfg.add_bos_token)
      spec_.prefix_ids = *cfg.add_bos_token && spec_.bos_id >= 0 ? std::vector<int>{spec_.bos_id} : std::vector<int>{};
    if (cfg.add_eos_token)
      spec_.suffix_ids = *cfg.add_eos_token && spec_.eos_id >= 0 ? std::vector<int>{spec_.eos_id} : std::vector<int>{};
  }
}

}  // namespace camelid
