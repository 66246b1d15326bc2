#include "chat/chat_template.h"

#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "core/mmap_file.h"
#include "core/gguf.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace camelid {
namespace {

// Used only when a model ships no template: the published formats of the two families.
const char* kLlama2Chat =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}";

const char* kLlama3Chat =
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, std::string bos, std::string eos)
    : source_(source), bos_(std::move(bos)), eos_(std::move(eos)), tmpl_(source) {}

ChatTemplate ChatTemplate::from_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  const TokenizerConfig cfg = fs::is_regular_file(config) ? read_tokenizer_config(config.string()) : TokenizerConfig{};
  std::string source = cfg.chat_template;
  // A separate chat_template.jinja (newer transformers) counts too.
  if (source.empty() && fs::is_regular_file(fs::path(dir) / "chat_template.jinja"))
    source = read_text_file((fs::path(dir) / "chat_template.jinja").string(), 16 << 20);  // the parser takes 1 MiB
  const bool llama3 = source.empty() && (cfg.bos_token == "<|begin_of_text|>" ||
                                         (fs::is_regular_file(fs::path(dir) / "tokenizer.json") &&
                                          read_text_file((fs::path(dir) / "tokenizer.json").string(), 128 << 20)  // the tokenizer's own cap
                                                  .find("<|begin_of_text|>") != std::string::npos));
  return make(config.string(), source, cfg.bos_token, cfg.eos_token, llama3);
}

ChatTemplate ChatTemplate::from_gguf(const gguf::File& f, const Tokenizer& tok) {
  auto text = [&](int id) { return id >= 0 ? tok.token_text(id) : std::string(); };
  const std::vector<int>& eos = tok.eos_ids();
  return make(f.source(), chat_template_from_gguf(f), text(tok.bos_id()), text(eos.empty() ? -1 : eos.front()),
              tok.token_id("<|begin_of_text|>") >= 0);
}

ChatTemplate ChatTemplate::make(const std::string& where, std::string source, std::string bos, std::string eos, bool llama3) {
  bool fallback = false;
  if (source.empty()) {
    fallback = true;
    source = llama3 ? kLlama3Chat : kLlama2Chat;
    if (bos.empty()) bos = llama3 ? "<|begin_of_text|>" : "<s>";
    if (eos.empty()) eos = llama3 ? "<|eot_id|>" : "</s>";
  }
  try {
    ChatTemplate t(source, bos, eos);
    t.fallback_ = fallback;
    return t;
  } catch (const jinja::TemplateError& e) {
    fail(where, ": chat_template: ", e.what());
  }
}

std::string ChatTemplate::render(const ChatTemplateInputs& in, const jinja::Limits& limits, jinja::RenderStats* stats) const {
  jinja::Dict vars;
  vars.emplace_back("messages", jinja::Value::from_json(in.messages));
  if (!in.tools.is_null()) vars.emplace_back("tools", jinja::Value::from_json(in.tools));
  vars.emplace_back("add_generation_prompt", jinja::Value(in.add_generation_prompt));
  vars.emplace_back("bos_token", jinja::Value(bos_));
  vars.emplace_back("eos_token", jinja::Value(eos_));
  if (in.now) {  // a pinned clock (tests, reproducible prompts) instead of the built-in global
    const std::time_t t = std::time_t(*in.now);
    vars.emplace_back("strftime_now", jinja::Value(jinja::Function([t](jinja::Args& a) {
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, a.pos.empty() ? "" : a.pos[0].to_str().c_str(), &tm);
      return jinja::Value(std::string(buf, n));
    })));
  }
  if (in.extra.is_object())
    for (auto it = in.extra.begin(); it != in.extra.end(); ++it) vars.emplace_back(it.key(), jinja::Value::from_json(it.value()));
  return tmpl_.render(vars, limits, stats);
}

}  // namespace camelid
