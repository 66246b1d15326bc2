#include "tokenizer/tokenizer_config.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/loader_util.h"

namespace camelid {
namespace {

using tok::json;
using tok::quote;

std::string token_string(const std::string& file, const char* field, const json& j) {
  if (j.is_null()) return {};
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) return tok::get_string(file, std::string(field) + ".content", tok::need(file, field, j, "content"));
  fail(file, ": ", field, " must be a string or an object with \"content\", not ", tok::type_name(j));
}

std::optional<bool> flag(const std::string& file, const json& j, const char* key) {
  const json* v = tok::member(j, key);
  if (!v) return std::nullopt;
  return tok::get_bool(file, key, *v);
}

std::string chat_template(const std::string& file, const json& t) {
  if (t.is_null()) return {};
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array()) fail(file, ": chat_template must be a string or a list of named templates, not ", tok::type_name(t));
  // Named templates: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
  std::string found, names;
  bool have_default = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const std::string f = "chat_template[" + std::to_string(i) + "]";
    tok::need_object(file, f, t[i]);
    const std::string name = tok::get_string(file, f + ".name", tok::need(file, f, t[i], "name"));
    const std::string text = tok::get_string(file, f + ".template", tok::need(file, f, t[i], "template"));
    if (name == "default") {
      if (have_default) fail(file, ": chat_template names 'default' twice");
      have_default = true;
      found = text;
    }
    if (i < 8) names += (i ? ", " : "") + quote(name);
  }
  if (!have_default && !t.empty())
    fail(file, ": chat_template is a list of named templates without one named 'default' (", names, ")");
  return found;
}

std::vector<AddedToken> added_tokens(const std::string& file, const json& j) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  tok::need_object(file, "added_tokens_decoder", j);
  for (auto& [key, v] : j.items()) {
    const std::string f = "added_tokens_decoder[" + quote(key) + "]";
    // Keys are decimal ids (transformers reads them with int()).
    if (key.empty() || key.size() > 9 || !std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      fail(file, ": ", f, ": the key must be a token id");
    const int64_t id = std::stoll(key);
    if (id >= tok::kMaxVocab) fail(file, ": ", f, ": token id ", id, " is out of range (0..", tok::kMaxVocab - 1, ")");
    tok::need_object(file, f, v);
    AddedToken t{int(id), tok::get_string(file, f + ".content", tok::need(file, f, v, "content")),
                 tok::bool_or(file, f, v, "special", false), tok::bool_or(file, f, v, "lstrip", false),
                 tok::bool_or(file, f, v, "rstrip", false)};
    if (t.content.empty()) fail(file, ": ", f, ": content is empty");
    if (t.content.size() > tok::kMaxAddedTokenBytes)
      fail(file, ": ", f, ": content is ", t.content.size(), " bytes long (at most ", tok::kMaxAddedTokenBytes, ")");
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  for (size_t i = 1; i < out.size(); ++i)
    if (out[i].id == out[i - 1].id) fail(file, ": added_tokens_decoder names token id ", out[i].id, " twice");
  return out;
}

}  // namespace

TokenizerConfig parse_tokenizer_config(std::string_view text, const std::string& path) {
  const json j = parse_json(text, path);
  if (!j.is_object()) fail(path, ": expected a JSON object, not ", tok::type_name(j));
  TokenizerConfig c;
  c.source = path;
  if (auto it = j.find("chat_template"); it != j.end()) c.chat_template = chat_template(path, *it);
  if (auto it = j.find("bos_token"); it != j.end()) c.bos_token = token_string(path, "bos_token", *it);
  if (auto it = j.find("eos_token"); it != j.end()) c.eos_token = token_string(path, "eos_token", *it);
  c.add_bos_token = flag(path, j, "add_bos_token");
  c.add_eos_token = flag(path, j, "add_eos_token");
  if (auto it = j.find("added_tokens_decoder"); it != j.end()) c.added_tokens = added_tokens(path, *it);
  return c;
}

TokenizerConfig read_tokenizer_config(const std::string& path) {
  return parse_tokenizer_config(tok::read_file_capped(path, tok::kMaxConfigFile), path);
}

void add_config_tokens(TokenizerSpec& spec, const TokenizerConfig& cfg) {
  if (cfg.added_tokens.empty()) return;
  std::unordered_map<std::string, int> ids;  // only needed for tokens beyond the vocabulary
  for (const AddedToken& t : cfg.added_tokens) {
    const size_t n = spec.tokens.size();
    const std::string f = cfg.source + ": added_tokens_decoder[" + std::to_string(t.id) + "]";
    if (size_t(t.id) < n) {
      if (spec.tokens[size_t(t.id)] != t.content)
        fail(f, " is ", quote(t.content), " but ", spec.source, " has ", quote(spec.tokens[size_t(t.id)]), " there");
      continue;
    }
    if (size_t(t.id) > n) fail(f, ": token id ", t.id, " is out of range (vocabulary of ", n, "; new tokens must follow it)");
    if (ids.empty())
      for (size_t i = 0; i < n; ++i) ids.emplace(spec.tokens[i], int(i));
    if (auto it = ids.find(t.content); it != ids.end())
      fail(f, ": ", quote(t.content), " is already token ", it->second);
    spec.tokens.push_back(t.content);
    spec.types.push_back(t.special ? TokenType::Control : TokenType::UserDefined);
    if (!spec.scores.empty()) spec.scores.push_back(0.0f);
    spec.added.push_back(t);
    ids.emplace(spec.tokens.back(), t.id);
  }
}

}  // namespace camelid
