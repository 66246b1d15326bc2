#pragma once
// A model's chat template: messages -> the prompt text the model was trained on.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chat/jinja.h"

namespace camelid {

namespace gguf {
class File;
}
class Tokenizer;

struct ChatTemplateInputs {
  // Ordered JSON: tojson in templates prints keys in the order the client sent them.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{"role": ..., "content": ...}, ...]
  nlohmann::ordered_json tools = nullptr;                             // list of tool schemas, or null
  bool add_generation_prompt = true;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();   // more template variables (e.g. date_string)
  std::optional<int64_t> now;  // strftime_now()'s clock in Unix seconds, read as UTC; unset: the local clock
};

class ChatTemplate {
 public:
  ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token);
  // tokenizer_config.json's chat_template (and bos/eos tokens); without one, the family's
  // standard format (Llama 3 if the vocabulary's BOS is <|begin_of_text|>, else Llama 2 chat).
  static ChatTemplate from_model_dir(const std::string& dir);
  // A GGUF file's tokenizer.chat_template, with bos/eos texts from its tokenizer (the same
  // fallback when the file has no template).
  static ChatTemplate from_gguf(const gguf::File& f, const Tokenizer& tok);

  // Templates come with downloaded models, so they are untrusted: the constructor (and so
  // from_model_dir, which wraps the message as Error "<file>: chat_template: ...") throws
  // jinja::TemplateError on a syntax error, jinja::LimitError (a TemplateError) for a source too
  // large or too deeply nested. render() throws jinja::RaisedError with the template's own
  // message (e.g. roles must alternate), jinja::LimitError when the render passes a sandbox limit
  // (steps, memory, output, depth, integer range), jinja::TemplateError for other failures; all
  // are camelid::Error, nothing else escapes, and every render ends (the step budget).
  std::string render(const ChatTemplateInputs& in, const jinja::Limits& limits = {}, jinja::RenderStats* stats = nullptr) const;

  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }
  bool is_fallback() const { return fallback_; }

 private:
  static ChatTemplate make(const std::string& where, std::string source, std::string bos, std::string eos, bool llama3);

  std::string source_, bos_, eos_;
  jinja::Template tmpl_;
  bool fallback_ = false;
};

}  // namespace camelid
