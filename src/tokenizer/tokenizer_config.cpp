#include "tokenizer/tokenizer_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mmap_file.h"

namespace camelid {
namespace {

std::string token_string(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

std::optional<bool> flag(const nlohmann::json& j, const char* key) {
  if (j.contains(key) && j[key].is_boolean()) return j[key].get<bool>();
  return std::nullopt;
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  TokenizerConfig c;
  if (j.contains("chat_template")) {
    const auto& t = j["chat_template"];
    if (t.is_string()) {
      c.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // named templates: [{"name": "default", "template": "..."}, ...]
      for (const auto& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          c.chat_template = e["template"].get<std::string>();
    }
  }
  c.bos_token = token_string(j.value("bos_token", nlohmann::json()));
  c.eos_token = token_string(j.value("eos_token", nlohmann::json()));
  c.add_bos_token = flag(j, "add_bos_token");
  c.add_eos_token = flag(j, "add_eos_token");
  return c;
}

}  // namespace camelid
