#include "server/openai_api.h"

#include "core/json.h"
#include "server/structured_output.h"

namespace camelid::api {

json ApiError::to_json() const {
  return {{"error",
           {{"message", what()}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json Usage::to_json() const {
  return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {

double number(const json& j, const char* key, double lo, double hi, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) bad_request(key, std::string("'") + key + "' must be a number");
  double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    bad_request(key, std::string("'") + key + "' must be between " + to_str(lo) + " and " + to_str(hi) + ", got " + to_str(v));
  return v;
}

void parse_messages(const json& msgs) {
  if (!msgs.is_array() || msgs.empty()) bad_request("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad_request(where, where + " must be an object");
    if (!m.contains("role") || !m["role"].is_string()) bad_request(where + ".role", where + ".role must be a string");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "ipython" &&
        role != "developer")
      bad_request(where + ".role", where + ".role '" + role + "' is not one of system, user, assistant, tool");
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      if (role != "assistant") bad_request(where + ".tool_calls", where + ".tool_calls is only allowed on assistant messages");
      if (!tc->is_array()) bad_request(where + ".tool_calls", where + ".tool_calls must be an array");
      for (size_t k = 0; k < tc->size(); ++k) {
        const json& call = (*tc)[k];
        const std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
          bad_request(cw, cw + " must be {\"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
        const json& f = call["function"];
        if (!f.contains("name") || !f["name"].is_string()) bad_request(cw + ".function.name", cw + ".function.name must be a string");
        if (auto a = f.find("arguments"); a != f.end() && !a->is_string() && !a->is_object())
          bad_request(cw + ".function.arguments", cw + ".function.arguments must be a JSON string");
        if (auto id = call.find("id"); id != call.end() && !id->is_string()) bad_request(cw + ".id", cw + ".id must be a string");
      }
    }
    for (const char* key : {"tool_call_id", "name"})
      if (auto v = m.find(key); v != m.end() && !v->is_null() && !v->is_string())
        bad_request(where + "." + key, where + "." + key + " must be a string");
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
      if (role != "assistant") bad_request(where + ".content", where + ".content is required");
    } else if (c->is_array()) {  // content parts: only text is supported
      for (auto& part : *c)
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          bad_request(where + ".content", where + ".content parts must be {\"type\":\"text\",\"text\":...}");
    } else if (!c->is_string()) {
      bad_request(where + ".content", where + ".content must be a string or an array of text parts");
    }
  }
}

// Flattens text content parts into one string so templates see plain strings; tool-call arguments
// sent as a JSON string (OpenAI) become the object templates expect (Hugging Face's convention).
json normalize_messages(json msgs) {
  for (auto& m : msgs) {
    if (auto tc = m.find("tool_calls"); tc != m.end() && tc->is_array())
      for (auto& call : *tc) {
        auto& f = call["function"];
        if (auto a = f.find("arguments"); a != f.end() && a->is_string()) {
          try {
            json obj = parse_ordered_json(a->get<std::string>(), "arguments", {64, true});
            if (obj.is_object()) *a = std::move(obj);
          } catch (const Error&) {  // not JSON: the template gets the string as sent
          }
        }
      }
    auto c = m.find("content");
    if (c != m.end() && c->is_array()) {
      std::string text;
      for (auto& part : *c) text += part["text"].get<std::string>();
      *c = text;
    }
  }
  return msgs;
}

}  // namespace

namespace {

// tools, tool_choice, parallel_tool_calls (chat).
void parse_tools(const json& j, CompletionRequest& r) {
  if (auto t = j.find("tools"); t != j.end() && !t->is_null()) {
    if (!t->is_array() || t->size() > 128) bad_request("tools", "'tools' must be an array of up to 128 tools");
    for (size_t i = 0; i < t->size(); ++i) {
      const json& tool = (*t)[i];
      const std::string w = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object() || tool.value("type", "") != "function" || !tool.contains("function") ||
          !tool["function"].is_object())
        bad_request(w, w + " must be {\"type\": \"function\", \"function\": {...}}");
      const json& f = tool["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
        bad_request(w + ".function.name", w + ".function.name must be a non-empty string");
      if (auto p = f.find("parameters"); p != f.end() && !p->is_null() && !p->is_object())
        bad_request(w + ".function.parameters", w + ".function.parameters must be an object");
      r.tool_names.push_back(f["name"]);
    }
    if (!t->empty()) r.tools = *t;
  }
  if (auto tc = j.find("tool_choice"); tc != j.end() && !tc->is_null()) {
    if (tc->is_string()) {
      const std::string v = *tc;
      if (v == "auto") r.tool_choice = ToolChoice::Auto;
      else if (v == "none") r.tool_choice = ToolChoice::None;
      else if (v == "required") r.tool_choice = ToolChoice::Required;
      else bad_request("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or a named function");
    } else if (tc->is_object() && tc->value("type", "") == "function" && tc->contains("function") &&
               (*tc)["function"].is_object() && (*tc)["function"].contains("name") && (*tc)["function"]["name"].is_string()) {
      r.tool_choice = ToolChoice::Named;
      r.tool_choice_name = (*tc)["function"]["name"];
    } else {
      bad_request("tool_choice", "'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (r.tool_choice != ToolChoice::None && r.tool_choice != ToolChoice::Auto && r.tool_names.empty())
      bad_request("tool_choice", "'tool_choice' needs 'tools'");
    if (r.tool_choice == ToolChoice::Named) {
      auto it = std::find(r.tool_names.begin(), r.tool_names.end(), r.tool_choice_name);
      if (it == r.tool_names.end())
        bad_request("tool_choice", "'tool_choice' names '" + r.tool_choice_name + "', which is not in 'tools'");
      // The template sees only that function, and only its calls are reported.
      r.tools = json::array({r.tools[it - r.tool_names.begin()]});
      r.tool_names = {r.tool_choice_name};
    }
  }
  // OpenAI's "none": the model must answer in text, so the template does not offer the tools.
  if (r.tool_choice == ToolChoice::None) r.tools = nullptr;
  if (auto p = j.find("parallel_tool_calls"); p != j.end() && !p->is_null()) {
    if (!p->is_boolean()) bad_request("parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
    r.parallel_tool_calls = *p;
  }
}

// An integer field within [lo, hi], or `def` when absent or null.
int integer(const json& j, const char* key, int lo, int hi, int def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer() || it->get<long long>() < lo || it->get<long long>() > hi)
    bad_request(key, std::string("'") + key + "' must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return it->get<int>();
}

CompletionRequest parse_fields(const json& j, bool chat, uint64_t default_seed, int vocab_size) {
  CompletionRequest r;
  r.chat = chat;
  r.max_tokens = chat ? -1 : 16;  // OpenAI's defaults
  if (auto m = j.find("model"); m != j.end() && !m->is_null()) {
    if (!m->is_string()) bad_request("model", "'model' must be a string");
    r.model = *m;
  }
  if (chat) {
    if (!j.contains("messages")) bad_request("messages", "'messages' is required");
    parse_messages(j["messages"]);
    r.messages = normalize_messages(j["messages"]);
    parse_tools(j, r);
  } else {
    auto p = j.find("prompt");
    if (p == j.end() || p->is_null()) bad_request("prompt", "'prompt' is required");
    if (p->is_string()) {
      r.prompt = *p;
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = (*p)[0];
    } else if (p->is_array() && !p->empty() && std::all_of(p->begin(), p->end(), [](const json& v) { return v.is_number_integer(); })) {
      for (auto& v : *p) {
        if (v.get<long long>() < 0 || v.get<long long>() > (vocab_size > 0 ? vocab_size - 1 : 1 << 30))
          bad_request("prompt", "'prompt' has an invalid token id " + std::to_string(v.get<long long>()));
        r.prompt_ids.push_back(v.get<int>());
      }
    } else {
      bad_request("prompt", "'prompt' must be a string, a one-string array or an array of token ids");
    }
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    r.max_tokens = integer(j, key, 0, 1 << 30, r.max_tokens);
  r.n = integer(j, "n", 1, 16, 1);
  if (chat) {
    bool want = false;
    if (auto lp = j.find("logprobs"); lp != j.end() && !lp->is_null()) {
      if (!lp->is_boolean()) bad_request("logprobs", "'logprobs' must be a boolean");
      want = *lp;
    }
    const int top = integer(j, "top_logprobs", 0, 20, 0);
    if (j.contains("top_logprobs") && !j["top_logprobs"].is_null() && !want)
      bad_request("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r.logprobs = want ? top : -1;
  } else {
    r.logprobs = integer(j, "logprobs", 0, 20, -1);
  }

  // OpenAI semantics: pure temperature + nucleus sampling unless the client asks for more.
  SamplingParams& s = r.sampling;
  s.temperature = float(number(j, "temperature", 0, 2, 1));
  s.top_p = float(number(j, "top_p", 0, 1, 1));
  if (s.top_p <= 0) s.top_p = 1e-6f;  // top_p 0: keep only the most likely token
  s.top_k = int(number(j, "top_k", 0, 1 << 30, 0));
  s.min_p = float(number(j, "min_p", 0, 1, 0));
  s.repeat_penalty = float(number(j, "repetition_penalty", 0.01, 100, 1));
  s.presence_penalty = float(number(j, "presence_penalty", -2, 2, 0));
  s.frequency_penalty = float(number(j, "frequency_penalty", -2, 2, 0));
  if (auto lb = j.find("logit_bias"); lb != j.end() && !lb->is_null()) {
    if (!lb->is_object() || lb->size() > 1024) bad_request("logit_bias", "'logit_bias' must be an object of up to 1024 token ids");
    for (auto& [key, v] : lb->items()) {
      long long id = -1;
      if (!key.empty() && key.size() <= 10 && key.find_first_not_of("0123456789") == std::string::npos) id = std::stoll(key);
      if (id < 0 || (vocab_size > 0 && id >= vocab_size))
        bad_request("logit_bias", "'logit_bias' key '" + key.substr(0, 32) + "' is not a token id" +
                              (vocab_size > 0 ? " below " + std::to_string(vocab_size) : std::string()));
      if (!v.is_number() || !(v.get<double>() >= -100 && v.get<double>() <= 100))
        bad_request("logit_bias", "'logit_bias' values must be numbers in [-100, 100]");
      s.logit_bias.emplace_back(int(id), float(v.get<double>()));
    }
  }
  s.seed = default_seed;
  if (auto sd = j.find("seed"); sd != j.end() && !sd->is_null()) {
    if (!sd->is_number_integer()) bad_request("seed", "'seed' must be an integer");
    s.seed = sd->is_number_unsigned() ? sd->get<uint64_t>() : uint64_t(sd->get<int64_t>());
  }
  if (auto st = j.find("stop"); st != j.end() && !st->is_null()) {
    if (st->is_string()) {
      r.stop.push_back(*st);
    } else if (st->is_array() && st->size() <= 16) {
      for (auto& v : *st) {
        if (!v.is_string()) bad_request("stop", "'stop' entries must be strings");
        r.stop.push_back(v);
      }
    } else {
      bad_request("stop", "'stop' must be a string or an array of up to 16 strings");
    }
    // The filter compares every prefix of every stop string at each token: keep that small.
    for (auto& s : r.stop)
      if (s.size() > 256) bad_request("stop", "'stop' strings must be at most 256 bytes");
  }
  if (auto st = j.find("stream"); st != j.end() && !st->is_null()) {
    if (!st->is_boolean()) bad_request("stream", "'stream' must be a boolean");
    r.stream = *st;
  }
  if (auto so = j.find("stream_options"); so != j.end() && !so->is_null()) {
    if (!so->is_object()) bad_request("stream_options", "'stream_options' must be an object");
    if (auto iu = so->find("include_usage"); iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean()) bad_request("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
      r.include_usage = *iu;
    }
  }
  r.grammar = parse_structured_output(j);
  return r;
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat, uint64_t default_seed, int vocab_size) {
  json j;
  try {
    // 64 levels hold any real tool schema; deeper nesting only costs us recursion later.
    j = parse_ordered_json(body, "request body", {64, true});
  } catch (const Error& e) {
    bad_request("", e.what());
  }
  if (!j.is_object()) bad_request("", "the body must be a JSON object");
  try {
    return parse_fields(j, chat, default_seed, vocab_size);
  } catch (const json::exception& e) {  // a field of an unexpected type that a check missed
    std::string m = e.what();
    if (auto p = m.find("] "); p != std::string::npos) m = m.substr(p + 2);  // "[json.exception.type_error.302] "
    bad_request("", "invalid request: " + m);
  }
}

namespace {

json base(const CompletionRequest& r, const ResponseMeta& m, bool chunk) {
  return {{"id", m.id}, {"object", r.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", m.created}, {"model", m.model}, {"system_fingerprint", nullptr}};
}

json finish_json(const std::string& f) { return f.empty() ? json(nullptr) : json(f); }

json tool_calls_json(const ResponseMeta& m, int index, const std::vector<tools::ToolCall>& calls) {
  json a = json::array();
  for (size_t i = 0; i < calls.size(); ++i)
    a.push_back({{"id", tools::tool_call_id(m.id + "/" + std::to_string(index), i)}, {"type", "function"},
                 {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  return a;
}

json stream_choice(int index, json delta_or_text, const std::string& finish, json logprobs, bool chat) {
  json c = {{"index", index}};
  if (chat) c["delta"] = std::move(delta_or_text);
  else c["text"] = std::move(delta_or_text);
  c["logprobs"] = std::move(logprobs);
  c["finish_reason"] = finish_json(finish);
  return c;
}

json chunk_with(const CompletionRequest& r, const ResponseMeta& m, json choice) {
  json j = base(r, m, true);
  j["choices"] = json::array({std::move(choice)});
  if (r.include_usage) j["usage"] = nullptr;
  return j;
}

}  // namespace

json completion_response(const CompletionRequest& r, const ResponseMeta& m, const std::vector<ChoiceResult>& choices,
                         const Usage& usage) {
  json j = base(r, m, false);
  json arr = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json choice = {{"index", i}};
    if (r.chat) {
      json msg = {{"role", "assistant"}, {"content", c.calls.empty() || !c.text.empty() ? json(c.text) : json(nullptr)},
                  {"refusal", nullptr}};
      if (!c.calls.empty()) msg["tool_calls"] = tool_calls_json(m, int(i), c.calls);
      choice["message"] = std::move(msg);
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = c.logprobs;
    choice["finish_reason"] = finish_json(c.finish_reason);
    arr.push_back(std::move(choice));
  }
  j["choices"] = std::move(arr);
  j["usage"] = usage.to_json();
  return j;
}

json role_chunk(const CompletionRequest& r, const ResponseMeta& m, int index) {
  return chunk_with(r, m, stream_choice(index, {{"role", "assistant"}, {"content", ""}}, "", nullptr, true));
}

json completion_chunk(const CompletionRequest& r, const ResponseMeta& m, int index, const std::string& text,
                      const std::string& finish_reason, json logprobs) {
  json body = r.chat ? (finish_reason.empty() || !text.empty() ? json{{"content", text}} : json::object()) : json(text);
  return chunk_with(r, m, stream_choice(index, std::move(body), finish_reason, std::move(logprobs), r.chat));
}

std::vector<json> tool_call_chunks(const CompletionRequest& r, const ResponseMeta& m, int index,
                                   const std::vector<tools::ToolCall>& calls) {
  std::vector<json> out;
  const json full = tool_calls_json(m, index, calls);
  for (size_t i = 0; i < full.size(); ++i) {
    json head = {{"index", i}, {"id", full[i]["id"]}, {"type", "function"},
                 {"function", {{"name", full[i]["function"]["name"]}, {"arguments", ""}}}};
    json delta = {{"tool_calls", json::array({head})}};
    out.push_back(chunk_with(r, m, stream_choice(index, std::move(delta), "", nullptr, true)));
    json args = {{"index", i}, {"function", {{"arguments", full[i]["function"]["arguments"]}}}};
    out.push_back(chunk_with(r, m, stream_choice(index, {{"tool_calls", json::array({args})}}, "", nullptr, true)));
  }
  return out;
}

json usage_chunk(const CompletionRequest& r, const ResponseMeta& m, const Usage& usage) {
  json j = base(r, m, true);
  j["choices"] = json::array();
  j["usage"] = usage.to_json();
  return j;
}

void LogprobsBuilder::clear() {
  if (chat_) j_ = {{"content", json::array()}, {"refusal", nullptr}};
  else j_ = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()}, {"text_offset", json::array()}};
}

bool LogprobsBuilder::empty() const { return chat_ ? j_["content"].empty() : j_["tokens"].empty(); }

void LogprobsBuilder::add(const std::string& token, float logprob, const std::vector<std::pair<std::string, float>>& top) {
  auto bytes = [](const std::string& t) {
    json b = json::array();
    for (unsigned char c : t) b.push_back(int(c));
    return b;
  };
  if (chat_) {
    json alts = json::array();
    for (auto& [t, l] : top) alts.push_back({{"token", t}, {"logprob", l}, {"bytes", bytes(t)}});
    j_["content"].push_back({{"token", token}, {"logprob", logprob}, {"bytes", bytes(token)}, {"top_logprobs", alts}});
  } else {
    json alts = json::object();
    for (auto& [t, l] : top)
      if (!alts.contains(t)) alts[t] = l;  // two ids with the same text: the likelier one
    j_["tokens"].push_back(token);
    j_["token_logprobs"].push_back(logprob);
    j_["top_logprobs"].push_back(std::move(alts));
    j_["text_offset"].push_back(offset_);
    offset_ += token.size();
  }
}

json LogprobsBuilder::take() {
  json out = std::move(j_);
  clear();
  return out;
}

}  // namespace camelid::api
