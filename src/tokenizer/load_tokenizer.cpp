// Tokenizer::load: find the tokenizer files of a model directory and apply tokenizer_config.json.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mmap_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace camelid {
namespace fs = std::filesystem;

namespace {

struct Files {
  std::string tokenizer;  // tokenizer.json or tokenizer.model
  std::string config;     // tokenizer_config.json, or empty
};

Files find_files(const std::string& path) {
  Files f;
  fs::path dir;
  if (fs::is_directory(path)) {
    dir = path;
    for (const char* name : {"tokenizer.json", "tokenizer.model"})
      if (fs::is_regular_file(dir / name)) { f.tokenizer = (dir / name).string(); break; }
  } else if (fs::is_regular_file(path)) {
    dir = fs::path(path).parent_path();
    f.tokenizer = path;
  } else {
    fail(path, ": no such file or directory");
  }
  if (fs::is_regular_file(dir / "tokenizer_config.json")) f.config = (dir / "tokenizer_config.json").string();
  return f;
}

std::string token_string(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
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
  const std::string name = fs::path(f.tokenizer).filename().string();
  TokenizerSpec spec;
  if (name == "tokenizer_config.json") fail(f.tokenizer, ": this is the tokenizer's config; pass tokenizer.json, tokenizer.model or the model directory");
  if (fs::path(f.tokenizer).extension() == ".json") spec = load_tokenizer_json(f.tokenizer);
  else spec = load_sentencepiece_model(f.tokenizer);
  auto tok = std::make_unique<Tokenizer>(std::move(spec));
  if (!f.config.empty()) tok->apply_config(f.config);
  return tok;
}

void Tokenizer::apply_config(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  if (j.contains("chat_template")) {
    const auto& t = j["chat_template"];
    if (t.is_string()) {
      chat_template_ = t.get<std::string>();
    } else if (t.is_array()) {  // named templates: [{"name": "default", "template": "..."}, ...]
      for (const auto& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template")) chat_template_ = e["template"].get<std::string>();
    }
  }
  bos_token_ = token_string(j.value("bos_token", nlohmann::json()));
  eos_token_ = token_string(j.value("eos_token", nlohmann::json()));
  const int bos = bos_token_.empty() ? -1 : token_id(bos_token_);
  const int eos = eos_token_.empty() ? -1 : token_id(eos_token_);
  if (bos >= 0 && spec_.bos_id < 0) spec_.bos_id = bos;
  if (eos >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), eos) == eos_ids_.end()) eos_ids_.push_back(eos);
  if (spec_.eos_id < 0) spec_.eos_id = eos;
  // A SentencePiece model has no post-processor: the config says whether BOS/EOS are added.
  if (spec_.source.size() >= 6 && spec_.source.compare(spec_.source.size() - 6, 6, ".model") == 0) {
    if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean())
      spec_.prefix_ids = j["add_bos_token"].get<bool>() && spec_.bos_id >= 0 ? std::vector<int>{spec_.bos_id} : std::vector<int>{};
    if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean())
      spec_.suffix_ids = j["add_eos_token"].get<bool>() && spec_.eos_id >= 0 ? std::vector<int>{spec_.eos_id} : std::vector<int>{};
  }
}

}  // namespace camelid
