#include "chat/chat_prompt.h"

#include <algorithm>

#include "core/error.h"

namespace camelid {

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::vector<int> encode_chat(const Tokenizer& tok, const ChatTemplate& tmpl, const ChatTemplateInputs& in) {
  const std::string text = tmpl.render(in);
  // Find each message's content in the rendered text, in order (templates usually trim it), and
  // mark those spans as plain text.
  std::vector<Tokenizer::Segment> segs;
  size_t cursor = 0;
  for (const auto& m : in.messages) {
    auto c = m.find("content");
    if (c == m.end() || !c->is_string()) continue;
    const std::string content = trim(c->get<std::string>());
    if (content.empty()) continue;
    const size_t at = text.find(content, cursor);
    if (at == std::string::npos) {
      // The template changed the text beyond trimming; safe only if it holds no special text.
      if (tok.contains_special_text(content))
        fail("cannot locate a message containing special-token text in the rendered chat prompt");
      continue;
    }
    if (at > cursor) segs.push_back({text.substr(cursor, at - cursor), true});
    segs.push_back({content, false});
    cursor = at + content.size();
  }
  if (cursor < text.size()) segs.push_back({text.substr(cursor), true});
  // The template writes the BOS text itself when the model wants one.
  return tok.encode_segments(segs, false);
}

std::vector<int> end_of_turn_ids(const Tokenizer& tok, const std::vector<int>& model_eos_ids) {
  std::vector<int> ids;
  auto add = [&](int id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (int id : model_eos_ids) add(id);
  for (int id : tok.eos_ids()) add(id);
  for (const char* t : {"<|eot_id|>", "<|eom_id|>", "</s>"}) add(tok.token_id(t));
  return ids;
}

}  // namespace camelid
