#include "server/choice_stream.h"

namespace camelid {

std::vector<std::pair<int, std::string>> tool_marker_tokens(const Tokenizer& tok) {
  std::vector<std::pair<int, std::string>> out;
  for (const char* t : {"<|python_tag|>", "<tool_call>", "</tool_call>"})
    if (const int id = tok.token_id(t); id >= 0 && tok.is_special(id)) out.emplace_back(id, t);
  return out;
}

ChoiceStream::ChoiceStream(const Tokenizer& tok, const api::CompletionRequest& r, const api::ResponseMeta& m, int index,
                           std::vector<std::pair<int, std::string>> markers)
    : tok_(tok), r_(r), m_(m), index_(index), markers_(std::move(markers)), dec_(tok, true, r.llama_format), stops_(r.stop) {
  if (r.parse_tools()) tools_.emplace(r.tool_names);
  else markers_.clear();
  if (r.logprobs >= 0) lp_.emplace(r.chat);
}

std::string ChoiceStream::token_text(int id) const { return tok_.decode({id}, false, true); }

void ChoiceStream::emit(const std::string& text, std::vector<api::json>& out) {
  const std::string piece = tools_ ? tools_->push(text) : text;
  result_.text += piece;
  // Streamed logprobs travel with the next text (a token's text may be held back a while).
  if (r_.stream && !piece.empty())
    out.push_back(api::completion_chunk(r_, m_, index_, piece, "", lp_ && !lp_->empty() ? lp_->take() : api::json(nullptr)));
}

std::vector<api::json> ChoiceStream::push(int token, const TokenLogprob* lp) {
  std::vector<api::json> out;
  if (stops_.stopped() || finished_) return out;
  if (lp_ && lp) lp_->add(*lp, [&](int id) { return token_text(id); });
  std::string text;
  bool marker = false;
  for (auto& [id, t] : markers_)
    if (id == token) text = dec_.flush() + t, marker = true;
  if (!marker) text = dec_.push(token);
  emit(stops_.push(text), out);
  return out;
}

std::vector<api::json> ChoiceStream::finish(const std::string& engine_finish) {
  std::vector<api::json> out;
  if (finished_) return out;
  finished_ = true;
  if (!stops_.stopped()) {
    std::string rest = stops_.push(dec_.flush());
    rest += stops_.flush();
    emit(rest, out);
  }
  std::string& finish = result_.finish_reason;
  finish = stops_.stopped() ? "stop" : engine_finish == "length" ? "length" : "stop";
  if (tools_) {
    tools::ParsedReply p = tools_->finish();
    if (!p.content.empty()) {
      result_.text += p.content;
      if (r_.stream) out.push_back(api::completion_chunk(r_, m_, index_, p.content, ""));
    }
    if (!p.calls.empty()) {
      if (!r_.parallel_tool_calls) p.calls.resize(1);
      result_.calls = p.calls;
      finish = "tool_calls";
      if (r_.stream)
        for (auto& c : api::tool_call_chunks(r_, m_, index_, p.calls)) out.push_back(std::move(c));
    }
  }
  const bool unsent = lp_ && !lp_->empty();  // logprobs of tokens whose text never came out
  api::json lp = lp_ ? lp_->take() : api::json(nullptr);
  if (r_.stream) out.push_back(api::completion_chunk(r_, m_, index_, "", finish, unsent ? lp : api::json(nullptr)));
  else result_.logprobs = std::move(lp);
  return out;
}

}  // namespace camelid
