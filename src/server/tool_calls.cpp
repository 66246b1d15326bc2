#include "server/tool_calls.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/json.h"

namespace camelid::tools {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kToolCallOpen = "<tool_call>", kToolCallClose = "</tool_call>";
constexpr std::string_view kFunctionOpen = "<function=", kFunctionClose = "</function>";
constexpr int kMaxDepth = 32;  // nesting of arguments we accept from a model

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool declared_name(const std::vector<std::string>& declared, const std::string& name) {
  return declared.empty() || std::find(declared.begin(), declared.end(), name) != declared.end();
}

// End (one past) of the balanced JSON object or array starting at s[i], strings respected;
// npos when it is not closed.
size_t json_extent(std::string_view s, size_t i) {
  int depth = 0;
  bool in_str = false;
  for (size_t k = i; k < s.size(); ++k) {
    const char c = s[k];
    if (in_str) {
      if (c == '\\') ++k;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return k + 1;
    }
  }
  return std::string_view::npos;
}

std::optional<json> parse_json_value(std::string_view s) {
  try {
    return parse_ordered_json(s, "tool call", {kMaxDepth, true});
  } catch (const Error&) {
    return std::nullopt;
  }
}

// {"name": "f", "parameters"|"arguments": {...} or a JSON string of one} -> a call.
std::optional<ToolCall> call_from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto n = j.find("name");
  if (n == j.end() || !n->is_string() || n->get<std::string>().empty()) return std::nullopt;
  json args = json::object();
  auto a = j.find("parameters");
  if (a == j.end()) a = j.find("arguments");
  if (a != j.end() && !a->is_null()) {
    if (a->is_string()) {  // some fine-tunes write the arguments as a JSON string, as OpenAI does
      auto inner = parse_json_value(a->get<std::string>());
      if (!inner || !inner->is_object()) return std::nullopt;
      args = *inner;
    } else if (a->is_object()) {
      args = *a;
    } else {
      return std::nullopt;
    }
  }
  for (auto& [k, v] : j.items())
    if (k != "name" && k != "parameters" && k != "arguments" && k != "type") return std::nullopt;
  return ToolCall{n->get<std::string>(), dump_json(args)};
}

// The whole of `s` as JSON calls separated by `;` and whitespace.
std::optional<std::vector<ToolCall>> json_call_sequence(std::string_view s, const std::vector<std::string>& declared) {
  std::vector<ToolCall> calls;
  size_t i = 0;
  for (;;) {
    while (i < s.size() && (is_space(s[i]) || s[i] == ';')) ++i;
    if (i == s.size()) break;
    if (s[i] != '{') return std::nullopt;
    const size_t end = json_extent(s, i);
    if (end == std::string_view::npos) return std::nullopt;
    auto j = parse_json_value(s.substr(i, end - i));
    if (!j) return std::nullopt;
    auto c = call_from_json(*j);
    if (!c || !declared_name(declared, c->name)) return std::nullopt;
    calls.push_back(std::move(*c));
    i = end;
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

// Python literals as models write call arguments: strings, numbers, True/False/None, lists,
// tuples, dicts. Returns false on anything else.
class PyParser {
 public:
  explicit PyParser(std::string_view s) : s_(s) {}
  size_t pos() const { return i_; }
  void skip() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool ident(std::string& out) {
    skip();
    const size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' ||
                              (i_ > b && s_[i_] == '.')))
      ++i_;
    if (i_ == b || std::isdigit(static_cast<unsigned char>(s_[b]))) return false;
    out.assign(s_.substr(b, i_ - b));
    return true;
  }
  bool value(json& out, int depth = 0) {
    if (depth > kMaxDepth) return false;
    skip();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"' || c == '\'') return string(out);
    if (c == '[' || c == '(') {
      const char close = c == '[' ? ']' : ')';
      ++i_;
      out = json::array();
      while (!eat(close)) {
        json v;
        if (!value(v, depth + 1)) return false;
        out.push_back(std::move(v));
        if (!eat(',')) return eat(close);
      }
      return true;
    }
    if (c == '{') {
      ++i_;
      out = json::object();
      while (!eat('}')) {
        json k, v;
        if (!value(k, depth + 1) || !k.is_string() || !eat(':') || !value(v, depth + 1)) return false;
        out[k.get<std::string>()] = std::move(v);
        if (!eat(',')) return eat('}');
      }
      return true;
    }
    std::string word;
    const size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '_'))
      word += s_[i_++];
    if (word == "True" || word == "true") return out = true, true;
    if (word == "False" || word == "false") return out = false, true;
    if (word == "None" || word == "null") return out = nullptr, true;
    if (word.empty() || word.size() > 40) return false;
    auto num = parse_json_value(word);  // a Python number that is also a JSON one
    if (!num || !num->is_number()) return i_ = b, false;
    out = *num;
    return true;
  }

 private:
  bool string(json& out) {
    const char q = s_[i_++];
    std::string v;
    while (i_ < s_.size() && s_[i_] != q) {
      char c = s_[i_++];
      if (c == '\\' && i_ < s_.size()) {
        c = s_[i_++];
        switch (c) {
          case 'n': v += '\n'; break;
          case 't': v += '\t'; break;
          case 'r': v += '\r'; break;
          default: v += c;  // \\, \', \" and anything else: the character itself
        }
      } else {
        v += c;
      }
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    out = std::move(v);
    return true;
  }
  std::string_view s_;
  size_t i_ = 0;
};

// `name(k=v, ...)` at the parser's position; positional arguments are not calls we can name.
std::optional<ToolCall> python_call(PyParser& p) {
  std::string name;
  if (!p.ident(name) || !p.eat('(')) return std::nullopt;
  json args = json::object();
  while (!p.eat(')')) {
    std::string key;
    json v;
    if (!p.ident(key) || key.find('.') != std::string::npos || !p.eat('=') || !p.value(v)) return std::nullopt;
    args[key] = std::move(v);
    if (!p.eat(',')) {
      if (!p.eat(')')) return std::nullopt;
      break;
    }
  }
  return ToolCall{name, dump_json(args)};
}

// After <|python_tag|>: JSON calls, built-in `tool.call(...)` calls, or code.
std::vector<ToolCall> python_tag_calls(std::string_view body) {
  body = trim(body);
  if (auto calls = json_call_sequence(body, {})) return *calls;
  {
    PyParser p(body);
    std::vector<ToolCall> calls;
    for (;;) {
      auto c = python_call(p);
      if (!c) break;
      const size_t dot = c->name.rfind(".call");
      if (dot == std::string::npos || dot + 5 != c->name.size() || dot == 0) break;
      c->name.resize(dot);
      calls.push_back(std::move(*c));
      while (p.eat(';')) {
      }
      p.skip();
      if (p.pos() == body.size()) return calls;
    }
  }
  if (body.empty()) return {};
  return {ToolCall{"ipython", dump_json(json{{"code", std::string(body)}})}};
}

// `[f(a=1), g(b="x")]`, the whole reply, every name declared.
std::optional<std::vector<ToolCall>> pythonic_list(std::string_view s, const std::vector<std::string>& declared) {
  if (declared.empty() || s.empty() || s.front() != '[' || s.back() != ']') return std::nullopt;
  PyParser p(s);
  p.eat('[');
  std::vector<ToolCall> calls;
  do {
    auto c = python_call(p);
    if (!c || !declared_name(declared, c->name)) return std::nullopt;
    calls.push_back(std::move(*c));
  } while (p.eat(','));
  if (!p.eat(']')) return std::nullopt;
  p.skip();
  if (p.pos() != s.size()) return std::nullopt;
  return calls;
}

// One <tool_call>…</tool_call> or <function=name>…</function> block's call.
std::optional<ToolCall> block_call(std::string_view open, std::string_view inner) {
  if (open == kToolCallOpen) {
    inner = trim(inner);
    if (inner.empty() || inner.front() != '{' || json_extent(inner, 0) != inner.size()) return std::nullopt;
    auto j = parse_json_value(inner);
    return j ? call_from_json(*j) : std::nullopt;
  }
  // <function=NAME>{args}</function>: `inner` starts after "<function=".
  const size_t gt = inner.find('>');
  if (gt == std::string_view::npos || gt == 0 || gt > 256) return std::nullopt;
  const std::string name(inner.substr(0, gt));
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return std::nullopt;
  std::string_view args = trim(inner.substr(gt + 1));
  if (args.empty()) return ToolCall{name, "{}"};
  auto j = parse_json_value(args);
  if (!j || !j->is_object()) return std::nullopt;
  return ToolCall{name, dump_json(*j)};
}

// Tagged blocks anywhere in the text; false when there is none that parses.
bool tagged_blocks(std::string_view text, ParsedReply& out) {
  size_t i = 0;
  for (;;) {
    const size_t a = text.find(kToolCallOpen, i), b = text.find(kFunctionOpen, i);
    const size_t at = std::min(a, b);
    if (at == std::string_view::npos) break;
    const std::string_view open = at == a ? kToolCallOpen : kFunctionOpen;
    const std::string_view close = at == a ? kToolCallClose : kFunctionClose;
    const size_t body = at + open.size();
    size_t end = text.find(close, body);
    // A reply cut at the end of its turn may lack the closing tag.
    const size_t inner_end = end == std::string_view::npos ? text.size() : end;
    end = end == std::string_view::npos ? text.size() : end + close.size();
    if (auto c = block_call(open, text.substr(body, inner_end - body))) {
      out.content.append(text.substr(i, at - i));
      out.calls.push_back(std::move(*c));
    } else {
      out.content.append(text.substr(i, end - i));  // not a call: stays text
    }
    i = end;
  }
  if (out.calls.empty()) return false;
  out.content.append(text.substr(i));
  return true;
}

}  // namespace

ParsedReply parse_tool_calls(std::string_view text, const std::vector<std::string>& declared) {
  ParsedReply out;
  if (tagged_blocks(text, out)) return out;
  out = {};
  if (const size_t tag = text.find(kPythonTag); tag != std::string_view::npos) {
    auto calls = python_tag_calls(text.substr(tag + kPythonTag.size()));
    if (!calls.empty()) return {std::string(text.substr(0, tag)), std::move(calls)};
  }
  const std::string_view t = trim(text);
  if (!t.empty() && t.front() == '{')
    if (auto calls = json_call_sequence(t, declared)) return {"", std::move(*calls)};
  if (auto calls = pythonic_list(t, declared)) return {"", std::move(*calls)};
  return {std::string(text), {}};
}

std::string ToolCallStream::push(std::string_view text) {
  buf_.append(text);
  if (holding_) return {};
  const size_t first = buf_.find_first_not_of(" \t\r\n");
  if (emitted_ == 0) {
    if (first == std::string::npos) return {};  // only whitespace so far: a call may follow
    if (buf_[first] == '{' || (buf_[first] == '[' && !declared_.empty())) return holding_ = true, std::string();
  }
  // A tag anywhere starts a call: hold from there. A tail that may be a tag's start waits.
  size_t hold = std::string::npos;
  for (std::string_view tag : {kPythonTag, kToolCallOpen, kFunctionOpen}) {
    const size_t at = buf_.find(tag, emitted_);
    if (at != std::string::npos) hold = std::min(hold, at), holding_ = true;
  }
  if (!holding_) {
    hold = buf_.size();
    for (std::string_view tag : {kPythonTag, kToolCallOpen, kFunctionOpen})
      for (size_t n = std::min(tag.size() - 1, buf_.size() - emitted_); n > 0; --n)
        if (buf_.compare(buf_.size() - n, n, tag.substr(0, n)) == 0) {
          hold = std::min(hold, buf_.size() - n);
          break;
        }
  }
  std::string out = buf_.substr(emitted_, hold - emitted_);
  emitted_ = hold;
  return out;
}

ParsedReply ToolCallStream::finish() {
  ParsedReply r = parse_tool_calls(buf_, declared_);
  // What was streamed is always the start of the parsed content (text before the first tag).
  r.content = r.content.size() >= emitted_ ? r.content.substr(emitted_) : std::string();
  if (!r.calls.empty() && trim(r.content).empty()) r.content.clear();
  return r;
}

std::string tool_call_id(const std::string& request_id, size_t index) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, then splitmix-style mixing per character
  for (char c : request_id + "#" + std::to_string(index)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) {
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    id += kAlnum[h % 62];
  }
  return id;
}

}  // namespace camelid::tools
