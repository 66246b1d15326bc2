#include "train/sft_data.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "chat/chat_prompt.h"
#include "chat/chat_template.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace camelid::train {

using ojson = nlohmann::ordered_json;

namespace {

size_t common_prefix(const std::vector<int>& a, const std::vector<int>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

std::vector<int> encode(const SftRenderer& r, const ojson& messages, const ojson& tools, bool gen_prompt) {
  ChatTemplateInputs in;
  in.messages = messages;
  in.tools = tools;
  in.add_generation_prompt = gen_prompt;
  in.now = r.now;
  return encode_chat(*r.tok, *r.tmpl, in);
}

void check_ids(const std::vector<int>& ids, int vocab, const std::string& where) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || (vocab > 0 && ids[i] >= vocab))
      fail(where, ": token id ", ids[i], " at position ", i, " is outside the vocabulary (", vocab, ")");
}

SftExample from_ids(const ojson& j, int vocab, const std::string& where) {
  SftExample e;
  e.where = where;
  const ojson& ids = j["input_ids"];
  if (!ids.is_array() || ids.size() < 2) fail(where, ": input_ids must be an array of at least 2 token ids");
  for (const auto& v : ids) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      fail(where, ": input_ids holds a value that is not a token id");
    e.ids.push_back(int(v.get<int64_t>()));
  }
  check_ids(e.ids, vocab, where);
  if (j.contains("labels")) {
    const ojson& lab = j["labels"];
    if (!lab.is_array() || lab.size() != ids.size()) fail(where, ": labels must be an array as long as input_ids");
    for (const auto& v : lab) {
      if (!v.is_number_integer()) fail(where, ": labels holds a value that is not a token id or -100");
      const int64_t x = v.get<int64_t>();
      if (x == -100) e.labels.push_back(-1);
      else if (x < 0 || x > INT32_MAX || (vocab > 0 && x >= vocab))
        fail(where, ": label ", x, " is outside the vocabulary (", vocab, ") and not -100");
      else e.labels.push_back(int(x));
    }
  } else {
    e.labels = e.ids;
  }
  e.labels[0] = -1;  // nothing predicts the first token
  if (std::all_of(e.labels.begin(), e.labels.end(), [](int l) { return l < 0; }))
    fail(where, ": no labelled token (every label after the first is -100)");
  return e;
}

}  // namespace

SftExample render_conversation(const ojson& messages, const ojson& tools, const SftRenderer& r,
                               const std::string& where) {
  if (!r.tok || !r.tmpl) fail(where, ": chat examples need the model's tokenizer and chat template");
  if (!messages.is_array() || messages.empty()) fail(where, ": messages must be a non-empty array");
  if (!tools.is_null() && !tools.is_array()) fail(where, ": tools must be an array");
  std::vector<size_t> assistant;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      fail(where, ": message ", i, " is not an object with a string role");
    if (m["role"] == "assistant") assistant.push_back(i);
  }
  if (assistant.empty()) fail(where, ": no assistant message (nothing to learn from)");
  // Each assistant turn costs two renders of the conversation so far: bound the quadratic work.
  if (assistant.size() > kMaxAssistantTurns)
    fail(where, ": ", assistant.size(), " assistant messages (at most ", kMaxAssistantTurns, " per example)");
  SftExample e;
  e.where = where;
  try {
    e.ids = encode(r, messages, tools, false);
    e.labels.assign(e.ids.size(), -1);
    for (size_t i : assistant) {
      const ojson before(messages.begin(), messages.begin() + ptrdiff_t(i));
      const ojson upto(messages.begin(), messages.begin() + ptrdiff_t(i) + 1);
      const size_t start = before.empty() ? 0 : common_prefix(encode(r, before, tools, true), e.ids);
      const std::vector<int> f = encode(r, upto, tools, false);
      const size_t end = common_prefix(f, e.ids) == f.size() ? f.size() : common_prefix(f, e.ids);
      for (size_t t = std::max<size_t>(start, 1); t < end; ++t) e.labels[t] = e.ids[t];
    }
  } catch (const Error& err) {
    fail(where, ": ", err.what());
  }
  check_ids(e.ids, r.vocab, where);
  if (std::all_of(e.labels.begin(), e.labels.end(), [](int l) { return l < 0; }))
    fail(where, ": the chat template renders no assistant tokens");
  return e;
}

std::vector<SftExample> sft_examples_from_text(const std::string& text, const std::string& path,
                                               const SftRenderer& r) {
  std::vector<SftExample> out;
  size_t pos = 0;
  for (int64_t line = 1; pos < text.size(); ++line) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view s(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (s.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path + ":" + std::to_string(line);
    ojson j;
    try {
      j = parse_ordered_json(s, "malformed JSON");
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    if (!j.is_object()) fail(where, ": expected a JSON object per line");
    if (j.contains("messages")) {
      out.push_back(render_conversation(j["messages"], j.contains("tools") ? j["tools"] : ojson(nullptr), r, where));
    } else if (j.contains("instruction") || j.contains("output")) {
      auto str = [&](const char* k, bool required) -> std::string {
        if (!j.contains(k) || j[k].is_null()) {
          if (required) fail(where, ": Alpaca example without \"", k, "\"");
          return {};
        }
        if (!j[k].is_string()) fail(where, ": \"", k, "\" must be a string");
        return j[k].get<std::string>();
      };
      std::string user = str("instruction", true);
      const std::string input = str("input", false), output = str("output", true);
      if (!input.empty()) user += "\n\n" + input;
      ojson msgs = ojson::array();
      msgs.push_back({{"role", "user"}, {"content", user}});
      msgs.push_back({{"role", "assistant"}, {"content", output}});
      out.push_back(render_conversation(msgs, nullptr, r, where));
    } else if (j.contains("input_ids")) {
      out.push_back(from_ids(j, r.vocab, where));
    } else {
      fail(where, ": expected \"messages\" (chat), \"instruction\"/\"output\" (Alpaca) or \"input_ids\"");
    }
  }
  return out;
}

std::vector<SftExample> read_sft_files(const std::vector<std::string>& paths, const SftRenderer& r) {
  std::vector<SftExample> out;
  for (const std::string& p : paths) {
    std::ifstream f(p, std::ios::binary);
    if (!f) fail(p, ": cannot open");
    const std::string text{std::istreambuf_iterator<char>(f), {}};
    if (f.bad()) fail(p, ": read error");
    auto ex = sft_examples_from_text(text, p, r);
    for (auto& e : ex) out.push_back(std::move(e));
  }
  if (out.empty()) fail("--data: no examples in ", paths.empty() ? std::string("(no files)") : paths.front(),
                        paths.size() > 1 ? " and the other files" : "");
  return out;
}

SftRows::SftRows(std::vector<SftExample> examples, int T, int pad) : T_(T), pad_(pad) {
  if (T < 1) fail("--seq-len must be >= 1");
  for (SftExample& e : examples) {
    tokens_ += e.ids.size();
    if (e.ids.size() > size_t(T) + 1) {
      ++truncated_;
      e.ids.resize(size_t(T) + 1), e.labels.resize(size_t(T) + 1);
    }
    int64_t n = 0;
    for (size_t i = 1; i < e.labels.size(); ++i) n += e.labels[i] >= 0;
    if (n == 0) {
      ++dropped_;
      continue;
    }
    n_targets_.push_back(n);
    ex_.push_back(std::move(e));
  }
  if (ex_.empty()) fail("no example has an assistant token within the first ", T + 1, " tokens (--seq-len ", T, ")");
}

void SftRows::fill(int64_t i, int* tokens, int* targets) const {
  const SftExample& e = ex_[size_t(i)];
  const int n = int(e.ids.size());
  for (int t = 0; t < T_; ++t) {
    tokens[t] = t < n ? e.ids[size_t(t)] : pad_;
    targets[t] = t + 1 < n ? e.labels[size_t(t) + 1] : -1;
  }
}

int64_t SftRows::target_tokens() const {
  int64_t n = 0;
  for (int64_t v : n_targets_) n += v;
  return n;
}

int longest_row(const std::vector<SftExample>& ex) {
  size_t m = 1;
  for (const SftExample& e : ex) m = std::max(m, e.ids.size() - 1);
  return int(std::min<size_t>(m, INT32_MAX));
}

std::vector<SftExample> split_examples_tail(std::vector<SftExample>& ex, double fraction) {
  if (!(fraction > 0 && fraction < 1)) fail("--val-fraction must be in (0, 1), got ", fraction);
  if (ex.size() < 2) fail("--val-fraction: needs at least 2 examples, got ", ex.size());
  size_t k = size_t(double(ex.size()) * fraction);
  k = std::clamp<size_t>(k, 1, ex.size() - 1);
  std::vector<SftExample> tail(std::make_move_iterator(ex.end() - ptrdiff_t(k)), std::make_move_iterator(ex.end()));
  ex.resize(ex.size() - k);
  return tail;
}

}  // namespace camelid::train
