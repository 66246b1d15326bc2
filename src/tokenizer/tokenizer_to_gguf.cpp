// Model directory tokenizer -> GGUF tokenizer.* metadata, following convert_hf_to_gguf.py's
// LlamaModel.set_vocab (_set_vocab_sentencepiece / _set_vocab_gpt2) and gguf-py's SpecialVocab
// rule by rule: which token types it assigns, how it pads the vocabulary, where special ids come
// from and in which order the keys appear. A file llama.cpp's converter would write differently
// is a bug here; a tokenizer it would refuse (or mangle) is refused with a reason.
#include "tokenizer/tokenizer_to_gguf.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer_config.h"

namespace camelid {
namespace {

namespace fs = std::filesystem;
using tok::json;
using tok::quote;

// gguf-py's TokenType.
enum GgufTokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

using tok::kSpace;

bool starts_ends(const std::string& t, const std::string& a, const std::string& b) {
  return t.size() >= a.size() && t.size() >= b.size() && t.compare(0, a.size(), a) == 0 &&
         t.compare(t.size() - b.size(), b.size(), b) == 0;
}

// The converter's does_token_look_special: added tokens some models forget to mark special.
bool looks_special(const std::string& t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  return starts_ends(t, "<|", "|>") || starts_ends(t, "<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || starts_ends(t, "<unused", ">");
}

json read_json(const std::string& path, uint64_t max_bytes) { return parse_json(tok::read_file_capped(path, max_bytes), path); }

struct AddedEntry {
  int64_t id;
  std::string content;
};

// tokenizer.json's added_tokens, in file order (where SpecialVocab looks up special token texts).
std::vector<AddedEntry> tokenizer_json_added(const std::string& path) {
  std::vector<AddedEntry> out;
  const json j = read_json(path, tok::kMaxTokenizerFile);
  const json* added = j.is_object() ? tok::member(j, "added_tokens") : nullptr;
  if (!added) return out;
  tok::need_array(path, "added_tokens", *added);
  for (size_t k = 0; k < added->size(); ++k) {
    const std::string f = "added_tokens[" + std::to_string(k) + "]";
    const json& a = tok::need_object(path, f, (*added)[k]);
    out.push_back({tok::get_int(path, f + ".id", tok::need(path, f, a, "id"), 0, tok::kMaxVocab - 1),
                   tok::get_string(path, f + ".content", tok::need(path, f, a, "content"))});
  }
  return out;
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;  // SentencePiece only
  std::vector<int32_t> types;
};

// _create_vocab_sentencepiece: every id up to vocab_size, unused [PADn] where the model has no
// piece; tokenizer_config.json's added tokens override the pieces (control when special).
Vocab sentencepiece_vocab(const std::string& dir, int64_t vocab_size, const std::vector<AddedToken>& config_added) {
  const TokenizerSpec sp = load_sentencepiece_model(dir + "/tokenizer.model");
  if (int64_t(sp.tokens.size()) > vocab_size)
    fail(dir, "/tokenizer.model: ", sp.tokens.size(), " pieces but config.json's vocab_size is ", vocab_size);
  Vocab v;
  for (int64_t i = 0; i < vocab_size; ++i) v.tokens.push_back("[PAD" + std::to_string(i) + "]");
  v.scores.assign(size_t(vocab_size), -10000.0f);
  v.types.assign(size_t(vocab_size), kUnused);
  for (size_t i = 0; i < sp.tokens.size(); ++i) {
    v.tokens[i] = sp.tokens[i];
    v.scores[i] = sp.scores[i];
    switch (sp.types[i]) {  // SentencePiece's user-defined pieces stay normal, as the converter has it
      case TokenType::Unknown: v.types[i] = kUnknown; break;
      case TokenType::Control: v.types[i] = kControl; break;
      case TokenType::Unused: v.types[i] = kUnused; break;
      case TokenType::Byte: v.types[i] = kByte; break;
      default: v.types[i] = kNormal; break;
    }
  }
  if (const std::string path = dir + "/added_tokens.json"; fs::is_regular_file(path)) {
    const json j = read_json(path, tok::kMaxConfigFile);
    tok::need_object(path, "", j);
    for (auto& [text, id_json] : j.items()) {
      const int64_t id = tok::get_int(path, quote(text), id_json, 0, tok::kMaxVocab - 1);
      if (id >= vocab_size) continue;  // the converter ignores ids past the vocabulary
      v.tokens[size_t(id)] = text, v.scores[size_t(id)] = -1000.0f, v.types[size_t(id)] = kUserDefined;
    }
  }
  for (const AddedToken& t : config_added) {
    if (t.id >= vocab_size) continue;
    const bool control = t.special || looks_special(t.content);
    v.tokens[size_t(t.id)] = control ? t.content : tok::replace_all(t.content, kSpace, " ");
    v.types[size_t(t.id)] = control ? kControl : kUserDefined;
    v.scores[size_t(t.id)] = -1000.0f;
  }
  return v;
}

// get_vocab_base of _set_vocab_gpt2: the tokenizer's vocabulary (added tokens included), control
// or user-defined for added tokens, [PADn] for ids it does not use.
Vocab byte_level_vocab(const TokenizerSpec& s, const std::string& path, int64_t vocab_size) {
  if (int64_t(s.tokens.size()) > vocab_size)
    fail(path, ": token ids go up to ", s.tokens.size() - 1, " but config.json's vocab_size is ", vocab_size);
  std::map<int, const AddedToken*> added;
  for (const AddedToken& t : s.added) added[t.id] = &t;
  Vocab v;
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (size_t(i) >= s.tokens.size() || s.tokens[size_t(i)].empty()) {
      v.tokens.push_back("[PAD" + std::to_string(i) + "]");
      v.types.push_back(kUnused);
    } else if (auto it = added.find(int(i)); it != added.end()) {
      const bool control = it->second->special || looks_special(s.tokens[size_t(i)]);
      v.tokens.push_back(control ? s.tokens[size_t(i)] : tok::replace_all(s.tokens[size_t(i)], kSpace, " "));
      v.types.push_back(control ? kControl : kUserDefined);
    } else {
      v.tokens.push_back(s.tokens[size_t(i)]);
      v.types.push_back(kNormal);
    }
  }
  return v;
}

// The converter names the pre-tokenizer by hashing how it splits a test text; camelid knows the
// two it can run, and knows them by their patterns.
std::string pre_tokenizer_name(const TokenizerSpec& s, const std::string& path) {
  if (s.split_patterns.size() == 1 && s.split_patterns[0] == tok::kLlama3Pattern && s.ignore_merges) return "llama-bpe";
  if (s.split_patterns.size() == 1 && s.split_patterns[0] == tok::kGpt2Pattern && !s.ignore_merges) return "gpt-2";
  fail(path, ": the pre-tokenizer is neither Llama 3's nor GPT-2's (camelid writes tokenizer.ggml.pre 'llama-bpe' or 'gpt-2' only)");
}

// SpecialVocab: token types in its order, the GGUF key of each id.
struct SpecialType {
  const char* name;
  const char* key;
};
constexpr SpecialType kSpecialTypes[] = {
    {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},  // sic
    {"pad", "tokenizer.ggml.padding_token_id"}, {"cls", "tokenizer.ggml.cls_token_id"},
    {"mask", "tokenizer.ggml.mask_token_id"},
};

class SpecialVocab {
 public:
  // n_vocab < 0: ids are not checked against the vocabulary (as _set_vocab_gpt2 builds it).
  SpecialVocab(const std::string& dir, int64_t n_vocab) : n_vocab_(n_vocab) {
    std::vector<AddedEntry> added;
    if (fs::is_regular_file(dir + "/tokenizer.json")) added = tokenizer_json_added(dir + "/tokenizer.json");
    const std::string cfg_path = dir + "/tokenizer_config.json";
    if (fs::is_regular_file(cfg_path)) {
      config_ = read_json(cfg_path, tok::kMaxConfigFile);
      tok::need_object(cfg_path, "", config_);
      for (const SpecialType& t : kSpecialTypes) {
        const std::string add_key = std::string("add_") + t.name + "_token";
        if (auto it = config_.find(add_key); it != config_.end() && it->is_boolean()) add_.emplace_back(t.name, it->get<bool>());
        auto it = config_.find(std::string(t.name) + "_token");
        if (it == config_.end()) continue;
        std::string text;
        if (it->is_string()) text = it->get<std::string>();
        else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) text = (*it)["content"].get<std::string>();
        else continue;
        for (const AddedEntry& a : added)  // the first added token with that text
          if (a.content == text) {
            set(t, a.id, cfg_path);
            break;
          }
      }
    }
    const std::string model_cfg = dir + "/config.json";
    if (fs::is_regular_file(model_cfg)) {
      const json c = read_json(model_cfg, tok::kMaxConfigFile);
      for (const SpecialType& t : kSpecialTypes)
        if (c.is_object())
          if (auto it = c.find(std::string(t.name) + "_token_id"); it != c.end() && it->is_number_integer())
            set(t, it->get<int64_t>(), model_cfg);  // a list of eos ids is ignored, as gguf-py does
    }
  }

  void set(const SpecialType& t, int64_t id, const std::string& file) {
    if (id < 0) fail(file, ": ", t.name, " token id ", id, " is negative");
    if (n_vocab_ >= 0 && id >= n_vocab_) return;  // gguf-py warns and skips it
    for (auto& [k, v] : ids_)
      if (k == t.key) return;  // the first source wins
    ids_.emplace_back(t.key, id);
  }

  void add_to(gguf::KeyValues& kv, const std::string& dir) const {
    for (auto& [key, id] : ids_) kv.emplace_back(key, gguf::u32_value(uint32_t(id)));
    // gguf-py writes the add_<type>_token flags it has a writer for: bos and eos.
    for (auto& [name, on] : add_)
      if (name == "bos" || name == "eos") kv.emplace_back("tokenizer.ggml.add_" + name + "_token", gguf::bool_value(on));
    add_chat_template(kv, dir);
  }

 private:
  // tokenizer_config.json's chat_template; a list of named ones as gguf-py writes it; else
  // chat_template.json's, else chat_template.jinja (newer transformers save it apart).
  void add_chat_template(gguf::KeyValues& kv, const std::string& dir) const {
    const json* t = config_.is_object() && config_.contains("chat_template") ? &config_["chat_template"] : nullptr;
    json alt;
    if (!t && fs::is_regular_file(dir + "/chat_template.json")) {
      alt = read_json(dir + "/chat_template.json", tok::kMaxConfigFile);
      if (alt.is_object() && alt.contains("chat_template")) t = &alt["chat_template"];
    }
    if (!t && fs::is_regular_file(dir + "/chat_template.jinja")) {
      kv.emplace_back("tokenizer.chat_template",
                      gguf::string_value(tok::read_file_capped(dir + "/chat_template.jinja", tok::kMaxConfigFile)));
      return;
    }
    if (!t || t->is_null()) return;
    if (t->is_string()) {
      kv.emplace_back("tokenizer.chat_template", gguf::string_value(t->get<std::string>()));
      return;
    }
    if (!t->is_array()) fail(dir, "/tokenizer_config.json: chat_template must be a string or a list of named templates");
    std::string dflt;
    bool have_default = false;
    std::vector<std::string> names;
    for (const json& choice : *t) {
      if (!choice.is_object() || !choice.contains("template") || !choice["template"].is_string()) continue;
      std::string name = choice.contains("name") && choice["name"].is_string() ? choice["name"].get<std::string>() : "";
      for (char& ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      if (name.empty()) continue;
      if (name == "default") {
        dflt = choice["template"].get<std::string>(), have_default = true;
      } else {
        kv.emplace_back("tokenizer.chat_template." + name, gguf::string_value(choice["template"].get<std::string>()));
        names.push_back(name);
      }
    }
    if (!names.empty()) kv.emplace_back("tokenizer.chat_templates", gguf::strings_value(names));
    if (have_default) kv.emplace_back("tokenizer.chat_template", gguf::string_value(dflt));
  }

  int64_t n_vocab_;
  json config_;
  std::vector<std::pair<std::string, int64_t>> ids_;
  std::vector<std::pair<std::string, bool>> add_;
};

}  // namespace

bool has_tokenizer_files(const std::string& dir) {
  return fs::is_regular_file(dir + "/tokenizer.model") || fs::is_regular_file(dir + "/tokenizer.json");
}

gguf::KeyValues tokenizer_gguf_metadata(const std::string& dir, int64_t vocab_size) {
  gguf::KeyValues kv;
  const std::string cfg_path = dir + "/tokenizer_config.json";
  TokenizerConfig cfg;
  if (fs::is_regular_file(cfg_path)) {
    cfg = read_tokenizer_config(cfg_path);
    const json raw = read_json(cfg_path, tok::kMaxConfigFile);
    if (auto it = raw.find("add_prefix_space"); it != raw.end() && it->is_boolean())
      kv.emplace_back("tokenizer.ggml.add_space_prefix", gguf::bool_value(it->get<bool>()));
  }
  if (fs::is_regular_file(dir + "/tokenizer.model")) {
    Vocab v = sentencepiece_vocab(dir, vocab_size, cfg.added_tokens);
    kv.emplace_back("tokenizer.ggml.model", gguf::string_value("llama"));
    kv.emplace_back("tokenizer.ggml.pre", gguf::string_value("default"));
    kv.emplace_back("tokenizer.ggml.tokens", gguf::strings_value(std::move(v.tokens)));
    kv.emplace_back("tokenizer.ggml.scores", gguf::f32s_value(v.scores));
    kv.emplace_back("tokenizer.ggml.token_type", gguf::i32s_value(v.types));
    SpecialVocab(dir, vocab_size).add_to(kv, dir);
  } else if (const std::string path = dir + "/tokenizer.json"; fs::is_regular_file(path)) {
    const TokenizerSpec s = load_tokenizer_json(path);
    if (s.kind != TokenizerSpec::Kind::ByteLevelBpe)
      fail(path, ": a SentencePiece-style vocabulary needs its tokenizer.model (its scores rank the merges in GGUF)");
    const std::string pre = pre_tokenizer_name(s, path);
    Vocab v = byte_level_vocab(s, path, vocab_size);
    kv.emplace_back("tokenizer.ggml.model", gguf::string_value("gpt2"));
    kv.emplace_back("tokenizer.ggml.pre", gguf::string_value(pre));
    kv.emplace_back("tokenizer.ggml.tokens", gguf::strings_value(std::move(v.tokens)));
    kv.emplace_back("tokenizer.ggml.token_type", gguf::i32s_value(v.types));
    std::vector<std::string> merges;
    merges.reserve(s.merges.size());
    for (auto [a, b] : s.merges) merges.push_back(s.tokens[size_t(a)] + " " + s.tokens[size_t(b)]);
    kv.emplace_back("tokenizer.ggml.merges", gguf::strings_value(std::move(merges)));
    SpecialVocab(dir, -1).add_to(kv, dir);
  } else {
    fail(dir, ": no tokenizer.model or tokenizer.json");
  }
  // Code Llama's infill tokens (convert_hf_to_gguf.py recognises it by its vocabulary size).
  if (vocab_size == 32016) {
    const char* keys[] = {"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
                          "tokenizer.ggml.middle_token_id", "tokenizer.ggml.eot_token_id"};
    for (int i = 0; i < 4; ++i) kv.emplace_back(keys[i], gguf::u32_value(uint32_t(32007 + i)));
  }
  return kv;
}

}  // namespace camelid
