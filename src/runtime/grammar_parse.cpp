#include "runtime/grammar_parse.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/error.h"

namespace camelid::grammar {

bool CharClass::contains(uint32_t cp) const {
  bool in = false;
  for (auto [lo, hi] : ranges)
    if (cp >= lo && cp <= hi) {
      in = true;
      break;
    }
  return in != negated;
}

bool CharClass::intersects(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (auto [a, b] : ranges)
      if (a <= hi && b >= lo) return true;
    return false;
  }
  // Negated: some code point of [lo, hi] escapes every range. Walk the ranges in order of start.
  std::vector<std::pair<uint32_t, uint32_t>> r = ranges;
  std::sort(r.begin(), r.end());
  uint32_t next = lo;  // smallest code point not yet known to be covered
  for (auto [a, b] : r) {
    if (a > next) break;
    if (b >= next) {
      if (b >= hi) return false;
      next = b + 1;
    }
  }
  return next <= hi;
}

namespace {

using Seq = std::vector<Elem>;
using Alts = std::vector<Seq>;
constexpr uint32_t kUnbounded = UINT32_MAX;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

class Parser {
 public:
  Parser(std::string_view s, const GrammarLimits& lim) : s_(s), lim_(lim) {}

  Grammar run() {
    if (s_.size() > lim_.max_bytes) fail("grammar: ", s_.size(), " bytes exceed the limit of ", lim_.max_bytes);
    skip_ws();
    if (p_ >= s_.size()) fail("grammar: it is empty (a rule named 'root' is required)");
    while (p_ < s_.size()) {
      const size_t at = p_;
      if (!is_name_char(s_[p_])) err(p_, "expected a rule name");
      const std::string name = parse_name();
      skip_ws();
      if (s_.substr(p_, 3) != "::=") err(p_, "expected '::=' after the rule name '", name, "'");
      p_ += 3;
      const uint32_t id = rule_id(name, at);
      if (defined_[id]) err(at, "rule '", name, "' is defined twice");
      defined_[id] = true;
      rules_[id] = parse_alternates(name, 0);
      skip_ws();
    }
    auto root = ids_.find("root");
    if (root == ids_.end() || !defined_[root->second]) fail("grammar: no rule named 'root' (where output starts)");
    for (size_t i = 0; i < rules_.size(); ++i)
      if (!defined_[i]) err(first_ref_[i], "rule '", names_[i], "' is used but not defined");
    Grammar g;
    g.root = root->second;
    g.rule_names = std::move(names_);
    g.classes = std::move(classes_);
    g.alts.resize(rules_.size());
    g.elems.reserve(n_elems_ + 2 * rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r)
      for (const Seq& alt : rules_[r]) {
        g.alts[r].push_back(uint32_t(g.elems.size()));
        g.elems.insert(g.elems.end(), alt.begin(), alt.end());
        g.elems.push_back({ElemType::End, 0});
      }
    check_left_recursion(g);
    return g;
  }

 private:
  template <typename... Args>
  [[noreturn]] void err(size_t at, Args&&... parts) {
    at = std::min(at, s_.size());
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; ++i) {
      if (s_[i] == '\n') ++line, col = 1;
      else ++col;
    }
    fail("grammar: line ", line, ", column ", col, ": ", std::forward<Args>(parts)...);
  }

  void skip_ws() {
    while (p_ < s_.size()) {
      const char c = s_[p_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') ++p_;
      else if (c == '#') while (p_ < s_.size() && s_[p_] != '\n') ++p_;
      else break;
    }
  }

  std::string parse_name() {
    const size_t b = p_;
    while (p_ < s_.size() && is_name_char(s_[p_])) ++p_;
    if (p_ - b > 256) err(b, "rule name longer than 256 characters");
    return std::string(s_.substr(b, p_ - b));
  }

  // Whether a new rule ("name ::=") starts at p_: the end of the current rule.
  bool at_rule_start() const {
    size_t q = p_;
    while (q < s_.size() && is_name_char(s_[q])) ++q;
    if (q == p_) return false;
    while (q < s_.size() && (s_[q] == ' ' || s_[q] == '\t' || s_[q] == '\r' || s_[q] == '\n')) ++q;
    return s_.substr(q, 3) == "::=";
  }

  uint32_t add_rule(std::string name, size_t at) {
    if (rules_.size() >= lim_.max_rules) err(at, "more than ", lim_.max_rules, " rules (repetitions and groups count)");
    names_.push_back(std::move(name));
    rules_.emplace_back();
    defined_.push_back(false);
    first_ref_.push_back(at);
    return uint32_t(rules_.size() - 1);
  }
  uint32_t rule_id(const std::string& name, size_t at) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const uint32_t id = add_rule(name, at);
    ids_.emplace(name, id);
    return id;
  }
  uint32_t generated_rule(const std::string& base, size_t at, Alts alts) {
    const uint32_t id = add_rule(base + "-" + std::to_string(++n_generated_), at);
    defined_[id] = true;
    for (const Seq& a : alts) count(a.size() + 1, at);
    rules_[id] = std::move(alts);
    return id;
  }
  void count(size_t n, size_t at) {
    n_elems_ += n;
    if (n_elems_ > lim_.max_elems) err(at, "the grammar expands to more than ", lim_.max_elems, " elements");
  }
  Elem char_elem(CharClass c) {
    std::string key(1, c.negated ? '^' : '=');
    for (auto [lo, hi] : c.ranges) key += std::to_string(lo) + "-" + std::to_string(hi) + ",";
    auto [it, added] = class_ids_.emplace(key, uint32_t(classes_.size()));
    if (added) classes_.push_back(std::move(c));
    return {ElemType::Char, it->second};
  }

  Alts parse_alternates(const std::string& base, int depth) {
    Alts alts;
    alts.push_back(parse_sequence(base, depth));
    while (p_ < s_.size() && s_[p_] == '|') {
      ++p_;
      alts.push_back(parse_sequence(base, depth));
    }
    for (const Seq& a : alts) count(a.size() + 1, p_);
    return alts;
  }

  Seq parse_sequence(const std::string& base, int depth) {
    Seq seq;
    size_t last = SIZE_MAX;  // where the last repeatable item starts in seq
    for (;;) {
      skip_ws();
      if (p_ >= s_.size()) break;
      const size_t at = p_;
      const char c = s_[p_];
      if (c == '|' || c == ')' || at_rule_start()) break;
      if (c == '"') {
        last = seq.size();
        ++p_;
        for (;;) {
          if (p_ >= s_.size()) err(at, "unterminated string literal");
          if (s_[p_] == '"') break;
          if (s_[p_] == '\n') err(p_, "newline inside a string literal (write \\n)");
          const uint32_t cp = parse_char();
          seq.push_back(char_elem({false, {{cp, cp}}}));
          count(1, at);
        }
        ++p_;
      } else if (c == '[') {
        last = seq.size();
        seq.push_back(char_elem(parse_class()));
        count(1, at);
      } else if (c == '.') {
        ++p_;
        last = seq.size();
        seq.push_back(char_elem({true, {}}));
        count(1, at);
      } else if (c == '(') {
        if (depth >= lim_.max_depth) err(at, "groups nested deeper than ", lim_.max_depth);
        ++p_;
        Alts sub = parse_alternates(base, depth + 1);
        skip_ws();
        if (p_ >= s_.size() || s_[p_] != ')') err(at, "unclosed '('");
        ++p_;
        last = seq.size();
        seq.push_back({ElemType::Ref, generated_rule(base, at, std::move(sub))});
      } else if (is_name_char(c)) {
        last = seq.size();
        const std::string name = parse_name();
        seq.push_back({ElemType::Ref, rule_id(name, at)});
        count(1, at);
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last == SIZE_MAX) err(at, "'", c, "' has nothing to repeat");
        uint32_t lo = 0, hi = kUnbounded;
        ++p_;
        if (c == '+') lo = 1;
        else if (c == '?') hi = 1;
        else if (c == '{') parse_bounds(at, lo, hi);
        repeat(seq, last, lo, hi, base, at);
        last = SIZE_MAX;  // "x**" is an error, as in regular expressions
      } else {
        err(at, "unexpected character '", printable_name(s_.substr(p_, 1)), "'");
      }
    }
    return seq;
  }

  void parse_bounds(size_t at, uint32_t& lo, uint32_t& hi) {
    auto number = [&](uint32_t& v) {
      skip_ws();
      const size_t b = p_;
      uint64_t x = 0;
      while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
        x = x * 10 + uint64_t(s_[p_++] - '0');
        if (x > lim_.max_repeat) err(b, "repetition bound above the limit of ", lim_.max_repeat);
      }
      v = uint32_t(x);
      return p_ > b;
    };
    const bool has_lo = number(lo);
    if (!has_lo) lo = 0;
    skip_ws();
    if (p_ < s_.size() && s_[p_] == '}') {
      if (!has_lo) err(at, "'{}' needs a count");
      hi = lo;
    } else {
      if (p_ >= s_.size() || s_[p_] != ',') err(p_, "expected ',' or '}' in a repetition");
      ++p_;
      if (!number(hi)) hi = kUnbounded;
      skip_ws();
      if (p_ >= s_.size() || s_[p_] != '}') err(p_, "expected '}' to close the repetition");
      if (hi < lo) err(at, "repetition {", lo, ",", hi, "} has its maximum below its minimum");
    }
    ++p_;
  }

  // seq[last..] repeated lo..hi times (hi may be unbounded).
  void repeat(Seq& seq, size_t last, uint32_t lo, uint32_t hi, const std::string& base, size_t at) {
    Seq x(seq.begin() + long(last), seq.end());
    seq.resize(last);
    if (x.empty()) return;  // "" repeated is still ""
    Elem e = x[0];
    if (x.size() > 1) e = {ElemType::Ref, generated_rule(base, at, {x})};
    count(lo, at);
    seq.insert(seq.end(), lo, e);
    if (hi == kUnbounded) {
      const uint32_t r = add_rule(base + "-" + std::to_string(++n_generated_), at);  // r ::= e r | ""
      defined_[r] = true;
      rules_[r] = {{e, {ElemType::Ref, r}}, {}};
      count(4, at);
      seq.push_back({ElemType::Ref, r});
    } else if (hi > lo) {
      // Nested optionals: opt_k ::= e opt_{k-1} | "" (linear size, unlike listing every count).
      uint32_t prev = UINT32_MAX;
      for (uint32_t k = 0; k < hi - lo; ++k) {
        Seq first = {e};
        if (prev != UINT32_MAX) first.push_back({ElemType::Ref, prev});
        prev = generated_rule(base, at, {first, {}});
      }
      seq.push_back({ElemType::Ref, prev});
    }
  }

  CharClass parse_class() {
    const size_t at = p_;
    ++p_;  // '['
    CharClass c;
    if (p_ < s_.size() && s_[p_] == '^') c.negated = true, ++p_;
    for (;;) {
      if (p_ >= s_.size() || s_[p_] == '\n') err(at, "unterminated character class");
      if (s_[p_] == ']') break;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (p_ + 1 < s_.size() && s_[p_] == '-' && s_[p_ + 1] != ']' && s_[p_ + 1] != '\n') {
        ++p_;
        const size_t rp = p_;
        hi = parse_char();
        if (hi < lo) err(rp, "character range ends below its start");
      }
      if (c.ranges.size() >= 4096) err(at, "character class with more than 4096 items");
      c.ranges.push_back({lo, hi});
    }
    ++p_;
    if (c.ranges.empty() && !c.negated) err(at, "empty character class");
    return c;
  }

  uint32_t hex(size_t n) {
    const size_t at = p_;
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i, ++p_) {
      if (p_ >= s_.size()) err(at, "escape needs ", n, " hex digits");
      const char c = s_[p_];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) err(p_, "escape needs ", n, " hex digits");
      v = v * 16 + uint32_t(d);
    }
    return v;
  }

  // One character of a literal or class: an escape or one UTF-8 encoded code point.
  uint32_t parse_char() {
    const size_t at = p_;
    uint32_t cp;
    const unsigned char c = uint8_t(s_[p_]);
    if (c == '\\') {
      if (++p_ >= s_.size()) err(at, "escape at the end of the grammar");
      const char e = s_[p_++];
      switch (e) {
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case '0': cp = 0; break;
        case 'x': cp = hex(2); break;
        case 'u': cp = hex(4); break;
        case 'U': cp = hex(8); break;
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '\'': cp = uint8_t(e); break;
        default: err(at, "unknown escape '\\", printable_name(std::string_view(&e, 1)), "'");
      }
    } else if (c < 0x80) {
      cp = c;
      ++p_;
    } else {
      const int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
      if (n < 0 || c > 0xF4 || p_ + size_t(n) >= s_.size()) err(at, "invalid UTF-8");
      cp = c & (0x3F >> n);
      for (int i = 1; i <= n; ++i) {
        const unsigned char d = uint8_t(s_[p_ + size_t(i)]);
        if ((d & 0xC0) != 0x80) err(at, "invalid UTF-8");
        cp = (cp << 6) | (d & 0x3F);
      }
      static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n]) err(at, "invalid UTF-8 (overlong)");
      p_ += size_t(n) + 1;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) err(at, "escape names no Unicode character");
    return cp;
  }

  // A rule that can reach itself through leading elements that may match nothing would make the
  // matcher expand forever (x* with an x that matches "" is the same loop).
  void check_left_recursion(const Grammar& g) {
    const size_t n = g.alts.size();
    std::vector<char> nullable(n, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (uint32_t a : g.alts[r]) {
          bool all = true;
          for (uint32_t i = a; g.elems[i].type != ElemType::End; ++i)
            if (g.elems[i].type == ElemType::Char || !nullable[g.elems[i].value]) {
              all = false;
              break;
            }
          if (all) {
            nullable[r] = 1, changed = true;
            break;
          }
        }
      }
    }
    std::vector<std::vector<uint32_t>> edges(n);
    for (size_t r = 0; r < n; ++r)
      for (uint32_t a : g.alts[r])
        for (uint32_t i = a; g.elems[i].type == ElemType::Ref; ++i) {
          edges[r].push_back(g.elems[i].value);
          if (!nullable[g.elems[i].value]) break;
        }
    // Iterative DFS (a long chain of rules must not overflow the stack).
    std::vector<char> color(n, 0);
    std::vector<std::pair<uint32_t, size_t>> st;
    for (size_t s = 0; s < n; ++s) {
      if (color[s]) continue;
      st.push_back({uint32_t(s), 0});
      color[s] = 1;
      while (!st.empty()) {
        auto& [r, k] = st.back();
        if (k < edges[r].size()) {
          const uint32_t t = edges[r][k++];
          if (color[t] == 1)
            fail("grammar: rule '", g.rule_names[t], "' is left-recursive (it can reach itself without matching a "
                 "character; generated rules are repetitions or groups of the rule named before the dash)");
          if (color[t] == 0) color[t] = 1, st.push_back({t, 0});
        } else {
          color[r] = 2;
          st.pop_back();
        }
      }
    }
  }

  std::string_view s_;
  const GrammarLimits& lim_;
  size_t p_ = 0;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<Alts> rules_;
  std::vector<bool> defined_;
  std::vector<size_t> first_ref_;
  std::vector<CharClass> classes_;
  std::map<std::string, uint32_t> class_ids_;
  size_t n_elems_ = 0;
  int n_generated_ = 0;
};

}  // namespace

Grammar parse_grammar(std::string_view text, const GrammarLimits& lim) { return Parser(text, lim).run(); }

}  // namespace camelid::grammar
