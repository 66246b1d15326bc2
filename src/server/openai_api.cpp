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

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  throw ApiError(400, msg, "invalid_request_error", param);
}

double number(const json& j, const char* key, double lo, double hi, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) bad(key, std::string("'") + key + "' must be a number");
  double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    bad(key, std::string("'") + key + "' must be between " + to_str(lo) + " and " + to_str(hi) + ", got " + to_str(v));
  return v;
}

void parse_messages(const json& msgs) {
  if (!msgs.is_array() || msgs.empty()) bad("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad(where, where + " must be an object");
    if (!m.contains("role") || !m["role"].is_string()) bad(where + ".role", where + ".role must be a string");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "ipython" &&
        role != "developer")
      bad(where + ".role", where + ".role '" + role + "' is not one of system, user, assistant, tool");
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
      if (role != "assistant") bad(where + ".content", where + ".content is required");
    } else if (c->is_array()) {  // content parts: only text is supported
      for (auto& part : *c)
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          bad(where + ".content", where + ".content parts must be {\"type\":\"text\",\"text\":...}");
    } else if (!c->is_string()) {
      bad(where + ".content", where + ".content must be a string or an array of text parts");
    }
  }
}

// Flattens text content parts into one string so templates see plain strings.
json normalize_messages(json msgs) {
  for (auto& m : msgs) {
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

CompletionRequest parse_fields(const json& j, bool chat, uint64_t default_seed) {
  CompletionRequest r;
  r.chat = chat;
  if (auto m = j.find("model"); m != j.end() && !m->is_null()) {
    if (!m->is_string()) bad("model", "'model' must be a string");
    r.model = *m;
  }
  if (chat) {
    if (!j.contains("messages")) bad("messages", "'messages' is required");
    parse_messages(j["messages"]);
    r.messages = normalize_messages(j["messages"]);
    if (auto t = j.find("tools"); t != j.end() && !t->is_null()) {
      if (!t->is_array()) bad("tools", "'tools' must be an array");
      r.tools = *t;
    }
  } else {
    auto p = j.find("prompt");
    if (p == j.end() || p->is_null()) bad("prompt", "'prompt' is required");
    if (p->is_string()) {
      r.prompt = *p;
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = (*p)[0];
    } else if (p->is_array() && !p->empty() && std::all_of(p->begin(), p->end(), [](const json& v) { return v.is_number_integer(); })) {
      for (auto& v : *p) {
        if (v.get<long long>() < 0 || v.get<long long>() > 1 << 30) bad("prompt", "'prompt' has an invalid token id");
        r.prompt_ids.push_back(v.get<int>());
      }
    } else {
      bad("prompt", "'prompt' must be a string, a one-string array or an array of token ids");
    }
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() > 1 << 30)
      bad(key, std::string("'") + key + "' must be a non-negative integer");
    r.max_tokens = it->get<int>();
  }
  if (auto n = j.find("n"); n != j.end() && !n->is_null() && !(n->is_number_integer() && *n == 1))
    bad("n", "only n = 1 is supported");

  // OpenAI semantics: pure temperature + nucleus sampling unless the client asks for more.
  SamplingParams& s = r.sampling;
  s.temperature = float(number(j, "temperature", 0, 2, 1));
  s.top_p = float(number(j, "top_p", 0, 1, 1));
  if (s.top_p <= 0) s.top_p = 1e-6f;  // top_p 0: keep only the most likely token
  s.top_k = int(number(j, "top_k", 0, 1 << 30, 0));
  s.min_p = float(number(j, "min_p", 0, 1, 0));
  s.repeat_penalty = float(number(j, "repetition_penalty", 0.01, 100, 1));
  s.seed = default_seed;
  if (auto sd = j.find("seed"); sd != j.end() && !sd->is_null()) {
    if (!sd->is_number_integer()) bad("seed", "'seed' must be an integer");
    s.seed = sd->is_number_unsigned() ? sd->get<uint64_t>() : uint64_t(sd->get<int64_t>());
  }
  if (auto st = j.find("stop"); st != j.end() && !st->is_null()) {
    if (st->is_string()) {
      r.stop.push_back(*st);
    } else if (st->is_array() && st->size() <= 16) {
      for (auto& v : *st) {
        if (!v.is_string()) bad("stop", "'stop' entries must be strings");
        r.stop.push_back(v);
      }
    } else {
      bad("stop", "'stop' must be a string or an array of up to 16 strings");
    }
    // The filter compares every prefix of every stop string at each token: keep that small.
    for (auto& s : r.stop)
      if (s.size() > 256) bad("stop", "'stop' strings must be at most 256 bytes");
  }
  if (auto st = j.find("stream"); st != j.end() && !st->is_null()) {
    if (!st->is_boolean()) bad("stream", "'stream' must be a boolean");
    r.stream = *st;
  }
  if (auto so = j.find("stream_options"); so != j.end() && !so->is_null()) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (auto iu = so->find("include_usage"); iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean()) bad("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
      r.include_usage = *iu;
    }
  }
  r.grammar = parse_structured_output(j);
  return r;
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat, uint64_t default_seed) {
  json j;
  try {
    // 64 levels hold any real tool schema; deeper nesting only costs us recursion later.
    j = parse_ordered_json(body, "request body", {64, true});
  } catch (const Error& e) {
    bad("", e.what());
  }
  if (!j.is_object()) bad("", "the body must be a JSON object");
  try {
    return parse_fields(j, chat, default_seed);
  } catch (const json::exception& e) {  // a field of an unexpected type that a check missed
    std::string m = e.what();
    if (auto p = m.find("] "); p != std::string::npos) m = m.substr(p + 2);  // "[json.exception.type_error.302] "
    bad("", "invalid request: " + m);
  }
}

namespace {
json base(const CompletionRequest& r, const std::string& id, long created, const std::string& model, bool chunk) {
  json j = {{"id", id}, {"object", r.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
            {"created", created}, {"model", model}, {"system_fingerprint", nullptr}};
  return j;
}
json finish_json(const std::string& f) { return f.empty() ? json(nullptr) : json(f); }
}  // namespace

json completion_response(const CompletionRequest& r, const std::string& id, long created, const std::string& model,
                         const std::string& text, const std::string& finish_reason, const Usage& usage) {
  json j = base(r, id, created, model, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_json(finish_reason)}};
  if (r.chat)
    choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  else
    choice["text"] = text;
  j["choices"] = json::array({choice});
  j["usage"] = usage.to_json();
  return j;
}

json completion_chunk(const CompletionRequest& r, const std::string& id, long created, const std::string& model,
                      const std::string& text, const std::string& finish_reason, bool role_chunk) {
  json j = base(r, id, created, model, true);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_json(finish_reason)}};
  if (r.chat) {
    if (role_chunk)
      choice["delta"] = {{"role", "assistant"}, {"content", ""}};
    else if (finish_reason.empty())
      choice["delta"] = {{"content", text}};
    else
      choice["delta"] = json::object();
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  if (r.include_usage) j["usage"] = nullptr;
  return j;
}

json usage_chunk(const CompletionRequest& r, const std::string& id, long created, const std::string& model,
                 const Usage& usage) {
  json j = base(r, id, created, model, true);
  j["choices"] = json::array();
  j["usage"] = usage.to_json();
  return j;
}

}  // namespace camelid::api
