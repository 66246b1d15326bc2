#include "train/preference_data.h"

#include <cmath>

#include "chat/chat_prompt.h"
#include "core/error.h"
#include "core/json.h"
#include "core/mmap_file.h"
#include "tokenizer/tokenizer.h"

namespace camelid::train {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// Longest sequence a line may ask for (far beyond any context camelid trains at): a bound on
// memory from a hostile file, checked before anything is allocated per id.
constexpr size_t kMaxIds = size_t(1) << 20;

std::vector<int> ids_field(const json& j, const char* key, const std::string& where, int vocab, bool allow_empty) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) fail(where, ": field '", key, "' must be an array of token ids");
  if (it->size() > kMaxIds) fail(where, ": field '", key, "' has ", it->size(), " ids (at most ", kMaxIds, ")");
  std::vector<int> ids;
  ids.reserve(it->size());
  for (const json& v : *it) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
      fail(where, ": field '", key, "' holds ", dump_json(v).substr(0, 40), ", not a token id in 0..", vocab - 1);
    ids.push_back(int(v.get<int64_t>()));
  }
  if (ids.empty() && !allow_empty) fail(where, ": field '", key, "' is empty");
  return ids;
}

// A reply: a string, or a list holding one assistant message.
std::string reply_text(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) fail(where, ": missing field '", key, "'");
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array() && it->size() == 1 && (*it)[0].is_object()) {
    const json& m = (*it)[0];
    if (m.value("role", json()).is_string() && m["role"] == "assistant" && m.contains("content") && m["content"].is_string())
      return m["content"].get<std::string>();
  }
  fail(where, ": field '", key, "' must be a string (or a list of one assistant message)");
}

ojson messages_of(const json& prompt, const std::string& where) {
  if (prompt.empty()) fail(where, ": field 'prompt' is an empty message list");
  ojson out = ojson::array();
  for (const json& m : prompt) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      fail(where, ": field 'prompt': each message must be an object with string 'role' and 'content'");
    out.push_back({{"role", m["role"].get<std::string>()}, {"content", m["content"].get<std::string>()}});
  }
  return out;
}

std::vector<int> chat_response(const PreferenceEncoder& enc, const ChatTemplate& tmpl, const ojson& messages, const std::vector<int>& prompt,
                               const std::string& reply, const std::string& where) {
  ChatTemplateInputs in;
  in.messages = messages;
  in.messages.push_back({{"role", "assistant"}, {"content", reply}});
  in.add_generation_prompt = false;
  std::vector<int> full = encode_chat(*enc.tok, tmpl, in);
  if (full.size() <= prompt.size() || !std::equal(prompt.begin(), prompt.end(), full.begin()))
    fail(where, ": the chat template does not render the prompt as the start of the conversation with the reply "
         "(cannot tell the reply's tokens apart)");
  return std::vector<int>(full.begin() + ptrdiff_t(prompt.size()), full.end());
}

PreferencePair parse_line(std::string_view line, const std::string& where, const PreferenceEncoder& enc, int vocab) {
  const json j = parse_json(line, where);
  if (!j.is_object()) fail(where, ": expected a JSON object with prompt, chosen and rejected");
  PreferencePair p;
  if (auto m = j.find("margin"); m != j.end()) {
    if (!m->is_number() || !std::isfinite(m->get<double>()) || std::fabs(m->get<double>()) > 1e6)
      fail(where, ": field 'margin' must be a finite number");
    p.margin = m->get<double>();
  }
  if (j.contains("prompt_ids") || j.contains("chosen_ids") || j.contains("rejected_ids")) {
    p.prompt = ids_field(j, "prompt_ids", where, vocab, false);
    p.chosen = ids_field(j, "chosen_ids", where, vocab, false);
    p.rejected = ids_field(j, "rejected_ids", where, vocab, false);
    return p;
  }
  auto pr = j.find("prompt");
  if (pr == j.end()) fail(where, ": missing field 'prompt' (or prompt_ids/chosen_ids/rejected_ids)");
  if (!enc.tok) fail(where, ": text needs the model's tokenizer");
  const std::string chosen = reply_text(j, "chosen", where), rejected = reply_text(j, "rejected", where);
  if (pr->is_string()) {
    p.prompt = enc.tok->encode(pr->get<std::string>(), true, false);
    p.chosen = enc.tok->encode_continuation(chosen);
    p.rejected = enc.tok->encode_continuation(rejected);
    if (!enc.eos_ids.empty()) p.chosen.push_back(enc.eos_ids[0]), p.rejected.push_back(enc.eos_ids[0]);
  } else if (pr->is_array()) {
    const ChatTemplate* tmpl = enc.tmpl ? enc.tmpl() : nullptr;
    if (!tmpl) fail(where, ": a chat-form prompt needs the model's chat template");
    const ojson msgs = messages_of(*pr, where);
    ChatTemplateInputs in;
    in.messages = msgs;
    in.add_generation_prompt = true;
    p.prompt = encode_chat(*enc.tok, *tmpl, in);
    p.chosen = chat_response(enc, *tmpl, msgs, p.prompt, chosen, where);
    p.rejected = chat_response(enc, *tmpl, msgs, p.prompt, rejected, where);
  } else {
    fail(where, ": field 'prompt' must be a string or a list of messages");
  }
  if (p.prompt.empty()) fail(where, ": the prompt has no tokens");
  if (p.chosen.empty() || p.rejected.empty()) fail(where, ": an empty response (chosen or rejected)");
  for (const auto* v : {&p.prompt, &p.chosen, &p.rejected})
    for (int id : *v)
      if (id < 0 || id >= vocab) fail(where, ": token id ", id, " is out of the model's vocabulary (", vocab, ")");
  return p;
}

}  // namespace

std::vector<PreferencePair> parse_preferences(std::string_view text, const std::string& source,
                                              const PreferenceEncoder& enc, int vocab_size) {
  if (vocab_size <= 0) fail(source, ": no vocabulary to check token ids against");
  std::vector<PreferencePair> out;
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = source + ":" + std::to_string(line);
    try {
      out.push_back(parse_line(l, where, enc, vocab_size));
    } catch (const std::exception& e) {  // the chat template's own errors included
      const std::string msg = e.what();
      if (msg.rfind(where, 0) == 0) throw;
      fail(where, ": ", msg);  // e.g. the chat template's own error
    }
    out.back().line = line;
  }
  if (out.empty()) fail(source, ": no preference pairs (expected JSON lines with prompt, chosen and rejected)");
  return out;
}

std::vector<PreferencePair> read_preferences(const std::string& path, const PreferenceEncoder& enc, int vocab_size) {
  return parse_preferences(read_text_file(path, size_t(1) << 30), path, enc, vocab_size);
}

}  // namespace camelid::train
