#pragma once
// Chat messages -> prompt token ids: render the model's template, then tokenize so that special
// tokens come only from the template itself. Text inside message contents is always plain text,
// so a user typing "<|eot_id|>" cannot end their turn or forge a header.
#include <vector>

#include "chat/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace camelid {

std::vector<int> encode_chat(const Tokenizer& tok, const ChatTemplate& tmpl, const ChatTemplateInputs& in);

// The tokens that end an assistant's turn: the model's eos ids (config.json and
// generation_config.json), the tokenizer's, and the family's end-of-turn tokens that the
// vocabulary has (<|eot_id|>, <|eom_id|>, </s>): a base model's config names only
// <|end_of_text|>, yet its chat replies end with <|eot_id|>. No duplicates, in that order.
std::vector<int> end_of_turn_ids(const Tokenizer& tok, const std::vector<int>& model_eos_ids);

}  // namespace camelid
