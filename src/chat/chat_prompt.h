#pragma once
// Chat messages -> prompt token ids: render the model's template, then tokenize so that special
// tokens come only from the template itself. Text inside message contents is always plain text,
// so a user typing "<|eot_id|>" cannot end their turn or forge a header.
#include <vector>

#include "chat/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace camelid {

std::vector<int> encode_chat(const Tokenizer& tok, const ChatTemplate& tmpl, const ChatTemplateInputs& in);

}  // namespace camelid
