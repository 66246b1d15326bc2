#include "core/json.h"

#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace camelid {

namespace {

// nlohmann's own DOM builder, with a depth counter and one key set per open object in front.
template <class Json>
class LimitedSax {
 public:
  LimitedSax(Json& out, const std::string& what, const JsonLimits& lim) : dom_(out, true), what_(what), lim_(lim) {}
  using number_integer_t = typename Json::number_integer_t;
  using number_unsigned_t = typename Json::number_unsigned_t;
  using number_float_t = typename Json::number_float_t;
  using string_t = typename Json::string_t;
  using binary_t = typename Json::binary_t;

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) { return dom_.number_float(v, s); }
  bool string(string_t& v) { return dom_.string(v); }
  bool binary(binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    enter();
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(string_t& k) {
    if (lim_.reject_duplicate_keys && !keys_.back().insert(k).second)
      fail(what_, ": duplicate key \"", printable(k), "\" in one JSON object");
    return dom_.key(k);
  }
  bool end_object() {
    --depth_;
    keys_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    enter();
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception& e) {
    fail(what_, ": invalid JSON at byte ", byte, ": ", reason(e.what()));
  }

 private:
  void enter() {
    if (++depth_ > lim_.max_depth) fail(what_, ": JSON nested deeper than ", lim_.max_depth, " levels");
  }
  // "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error while parsing
  // value - invalid literal; last read: '<raw bytes>'" -> "syntax error ... - invalid literal".
  static std::string reason(std::string m) {
    if (m.rfind("[json.exception.", 0) == 0)
      if (auto p = m.find("] "); p != std::string::npos) m = m.substr(p + 2);
    if (m.rfind("parse error", 0) == 0)
      if (auto p = m.find(": "); p != std::string::npos) m = m.substr(p + 2);
    if (auto p = m.find("; last read"); p != std::string::npos) m.resize(p);
    return printable(m);
  }
  static std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
    return out;
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  const std::string& what_;
  const JsonLimits& lim_;
  int depth_ = 0;
  std::vector<std::unordered_set<string_t>> keys_;
};

template <class Json>
Json parse_limited(std::string_view text, const std::string& what, const JsonLimits& lim) {
  Json out;
  LimitedSax<Json> sax(out, what, lim);
  Json::sax_parse(text.begin(), text.end(), &sax);
  return out;
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& what, const JsonLimits& lim) {
  return parse_limited<nlohmann::json>(text, what, lim);
}
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& what, const JsonLimits& lim) {
  return parse_limited<nlohmann::ordered_json>(text, what, lim);
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string dump_json(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace camelid
