#include "runtime/json_schema_grammar.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "runtime/json_number_ranges.h"
#include "runtime/regex_grammar.h"

namespace camelid {

namespace {

using json = nlohmann::ordered_json;

const char* const kEmptyObject = "( \"{\" ws \"}\" )";

// uniqueItems is enforced on arrays of listed values by one grammar rule per subset written so
// far: 2^8 rules at most.
constexpr size_t kMaxUniqueValues = 8;

// The JSON building blocks, written once into every grammar that needs them.
const char* const kPrimitives[][2] = {
    {"ws", R"(| " " | "\n" [ \t]{0,20})"},
    {"json-value", R"(json-object | json-array | json-string | json-number | "true" | "false" | "null")"},
    {"json-object", R"("{" ws ( json-string ws ":" ws json-value ws ( "," ws json-string ws ":" ws json-value ws )* )? "}")"},
    {"json-array", R"("[" ws ( json-value ws ( "," ws json-value ws )* )? "]")"},
    {"json-string", R"("\"" json-char* "\"")"},
    {"json-char", R"([^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ))"},
    {"json-int", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
    {"json-number", R"(json-int ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)"},
    {"json-date", R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ))"},
    {"json-time", R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [-+] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
    {"json-uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})"},
    {"json-ipv4", R"(json-octet "." json-octet "." json-octet "." json-octet)"},
    {"json-octet", R"("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])"},
    {"json-ipv6", R"([0-9a-fA-F]{1,4} ( ":" [0-9a-fA-F]{1,4} ){7})"},  // the full form only
    // At most 4 labels of at most 62 characters: 251 characters, within a hostname's 253.
    {"json-hostname", R"(json-label ( "." json-label ){0,3})"},
    {"json-label", R"([a-zA-Z0-9] ( [a-zA-Z0-9\-]{0,60} [a-zA-Z0-9] )?)"},
    {"json-email", R"(json-atext{1,32} ( "." json-atext{1,15} ){0,2} "@" json-hostname)"},  // local part <= 64
    {"json-atext", R"([a-zA-Z0-9!#$%&'*+/=?\^_`{|}~\-])"},
};

}  // namespace


namespace {

std::string literal(const std::string& text) { return gbnf_literal(text); }

std::string escape_pointer(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

class Converter {
 public:
  explicit Converter(const json& root, std::string prefix = "s") : root_(root), prefix_(std::move(prefix)) {}

  std::string run() { return rules("root") + primitives(); }

  // `name ::= ...` and its helper rules (named prefix + n), without the primitives.
  std::string rules(const std::string& name) {
    const std::string body = gen(root_, "#");
    std::string out = name + " ::= " + body + "\n";
    for (const auto& [n, def] : rules_) out += n + " ::= " + def + "\n";
    return out;
  }

  static std::string primitives() {
    std::string out;
    for (const auto& p : kPrimitives) out += std::string(p[0]) + " ::= " + p[1] + "\n";
    return out;
  }

 private:
  template <typename... Args>
  [[noreturn]] static void err(const std::string& path, Args&&... parts) {
    fail("json_schema: ", printable_name(path), ": ", std::forward<Args>(parts)...);
  }

  std::string new_rule(const std::string& body) {
    if (rules_.size() > 100000) fail("json_schema: the schema needs more than 100000 grammar rules");
    const std::string name = prefix_ + std::to_string(rules_.size() + 1);
    rules_.push_back({name, body});
    return name;
  }

  // A GBNF expression for the values `s` accepts.
  std::string gen(const json& s, const std::string& path) {
    if (++depth_ > 200) err(path, "nested deeper than 200 levels");
    std::string r = gen_inner(s, path);
    --depth_;
    return r;
  }

  std::string gen_inner(const json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) err(path, "the schema false accepts nothing");
      return "json-value";
    }
    if (!s.is_object()) err(path, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) check_keyword(k, s, path);
    if (s.contains("$ref")) return ref(s["$ref"], path + "/$ref");
    if (s.contains("const")) return literal(s["const"].dump());
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) err(path + "/enum", "must be a non-empty array");
      std::vector<std::string> alts;
      for (const json& v : e) alts.push_back(literal(v.dump()));
      return gbnf_one_of(alts);
    }
    for (const char* k : {"anyOf", "oneOf"})
      if (s.contains(k)) {
        const json& a = s[k];
        if (!a.is_array() || a.empty()) err(path + "/" + k, "must be a non-empty array");
        // An alternative the grammar cannot enforce (pydantic's Decimal: a number, or a string
        // whose pattern has a lookahead) is left out while another one remains: writing fewer
        // of the alternatives still validates.
        std::vector<std::string> alts;
        std::string first_error;
        for (size_t i = 0; i < a.size(); ++i) {
          const size_t n_rules = rules_.size();
          const auto refs = refs_;
          const int depth = depth_;
          try {
            alts.push_back(gen(a[i], path + "/" + k + "/" + std::to_string(i)));
          } catch (const Error& e) {
            rules_.resize(n_rules), refs_ = refs, depth_ = depth;  // as if it was never tried
            if (first_error.empty()) first_error = e.what();
          }
        }
        if (alts.empty()) fail(first_error);
        return gbnf_one_of(alts);
      }
    if (s.contains("allOf")) {
      const json& a = s["allOf"];
      if (!a.is_array() || a.size() != 1) err(path + "/allOf", "only an allOf of one schema is supported");
      return gen(a[0], path + "/allOf/0");
    }
    if (!s.contains("type")) {
      if (s.contains("properties") || s.contains("patternProperties")) return object(s, path);
      if (s.contains("items") || s.contains("prefixItems")) return array(s, path);
      return "json-value";
    }
    const json& t = s["type"];
    if (t.is_string()) return typed(t.get<std::string>(), s, path);
    if (!t.is_array() || t.empty()) err(path + "/type", "must be a type name or a non-empty array of them");
    std::vector<std::string> alts;
    for (const json& x : t) {
      if (!x.is_string()) err(path + "/type", "must hold type names");
      alts.push_back(typed(x.get<std::string>(), s, path));
    }
    return gbnf_one_of(alts);
  }

  void check_keyword(const std::string& k, const json& s, const std::string& path) {
    static const std::set<std::string> unsupported = {
        "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
        "contains", "minContains", "maxContains", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"};
    if (unsupported.count(k)) err(path + "/" + escape_pointer(k), "the keyword '", k, "' is not supported");
    if (k == "uniqueItems") {
      if (!s[k].is_boolean()) err(path + "/uniqueItems", "must be a boolean");
      // Only array() enforces it: a schema that another branch of gen_inner writes would not.
      for (const char* other : {"$ref", "const", "enum", "anyOf", "oneOf", "allOf"})
        if (s[k] == true && s.contains(other)) err(path + "/uniqueItems", "uniqueItems beside '", other, "' is not supported");
    }
    // These constrain only values of one type: without a type the grammar would write any JSON.
    static const std::set<std::string> typed_only = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                                     "minLength", "maxLength", "pattern", "format",
                                                     "minItems", "maxItems", "prefixItems", "uniqueItems", "minProperties",
                                                     "maxProperties", "propertyNames", "patternProperties"};
    // (What gives a schema its shape without `type`: gen_inner's other branches.)
    static const char* const shaped_by[] = {"type", "items", "prefixItems", "properties", "patternProperties",
                                            "enum", "const", "$ref", "anyOf", "oneOf", "allOf"};
    if (typed_only.count(k) && std::none_of(std::begin(shaped_by), std::end(shaped_by), [&](const char* x) { return s.contains(x); }))
      err(path + "/" + escape_pointer(k), "'", k, "' needs a 'type' beside it");
  }

  std::string ref(const json& r, const std::string& path) {
    const json& def = resolve(r, path);
    const std::string target = r.get<std::string>();
    auto it = refs_.find(target);
    if (it != refs_.end()) return it->second;
    // The rule exists before its body is generated, so a recursive reference finds it.
    const std::string name = new_rule("");
    refs_[target] = name;
    const std::string body = gen(def, target);
    for (auto& [n, b] : rules_)
      if (n == name) b = body;
    return name;
  }

  // The schema a $ref names: #/$defs/NAME, #/definitions/NAME or # (the root).
  const json& resolve(const json& r, const std::string& path) const {
    if (!r.is_string()) err(path, "must be a string");
    const std::string target = r.get<std::string>();
    std::string rest;
    if (target.rfind("#/$defs/", 0) == 0) rest = "$defs";
    else if (target.rfind("#/definitions/", 0) == 0) rest = "definitions";
    else if (target == "#") rest = "";
    else err(path, "only references to #/$defs/NAME or #/definitions/NAME are supported, not '", target, "'");
    const json* def = &root_;
    if (!rest.empty()) {
      const std::string name = target.substr(3 + rest.size());
      std::string key;  // unescape ~1 and ~0 (RFC 6901)
      for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '~' && i + 1 < name.size() && (name[i + 1] == '0' || name[i + 1] == '1'))
          key += name[++i] == '0' ? '~' : '/';
        else key += name[i];
      }
      if (!root_.contains(rest) || !root_[rest].is_object() || !root_[rest].contains(key))
        err(path, "'", target, "' names no definition");
      def = &root_[rest][key];
    }
    return *def;
  }

  std::string typed(const std::string& t, const json& s, const std::string& path) {
    if (t == "object") return object(s, path);
    if (t == "array") return array(s, path);
    if (t == "string") return string(s, path);
    if (t == "number" || t == "integer") return number(s, path, t == "integer");
    if (t == "boolean") return "( \"true\" | \"false\" )";
    if (t == "null") return "\"null\"";
    err(path + "/type", "unknown type '", t, "'");
  }

  static uint64_t count(const json& s, const char* k, const std::string& path, uint64_t dflt) {
    if (!s.contains(k)) return dflt;
    const json& v = s[k];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) err(path + "/" + k, "must be a non-negative integer");
    return v.get<uint64_t>();
  }

  // minimum / maximum / exclusive*: integer bounds round inward; a number's are exact decimals.
  std::string number(const json& s, const std::string& path, bool integer) {
    std::optional<NumberBound> lo, hi;
    double lo_x = 0, hi_x = 0;
    auto bound = [&](const char* k, bool upper, bool exclusive) {
      if (!s.contains(k)) return;
      const json& v = s[k];
      if (v.is_boolean()) {  // draft 4: exclusiveMinimum/Maximum true qualifies minimum/maximum (read there)
        if (std::string(k).rfind("exclusive", 0) != 0) err(path + "/" + k, "must be a number");
        if (v == true && !s.contains(upper ? "maximum" : "minimum"))
          err(path + "/" + k, "true needs ", upper ? "maximum" : "minimum", " beside it");
        return;
      }
      if (!v.is_number()) err(path + "/" + k, "must be a number");
      double x = v.get<double>();
      if (!(std::fabs(x) <= 1e15)) err(path + "/" + k, "bounds beyond +-10^15 are not supported");
      NumberBound b;
      if (integer) {  // the integers v with x <= v (x < v, ...), as an inclusive bound
        x = upper ? (exclusive ? std::ceil(x) - 1 : std::floor(x)) : (exclusive ? std::floor(x) + 1 : std::ceil(x));
        b.value = int64_t(x);
      } else {
        try {
          b = parse_number_bound(v.dump(), exclusive);  // the shortest text that reads back as x
        } catch (const Error& e) {
          err(path + "/" + k, e.what());
        }
      }
      std::optional<NumberBound>& slot = upper ? hi : lo;
      double& slot_x = upper ? hi_x : lo_x;
      // Both an inclusive and an exclusive bound on one side: the tighter one.
      if (!slot || (upper ? (x < slot_x || (x == slot_x && b.exclusive)) : (x > slot_x || (x == slot_x && b.exclusive))))
        slot = b, slot_x = x;
    };
    bound("minimum", false, s.value("exclusiveMinimum", json()) == true);
    bound("maximum", true, s.value("exclusiveMaximum", json()) == true);
    bound("exclusiveMinimum", false, true);
    bound("exclusiveMaximum", true, true);
    // multipleOf: 1 (integers) or 0.1, 0.01, ... on numbers (at most that many decimals).
    int digits = integer ? 0 : 16;
    if (s.contains("multipleOf")) {
      const json& m = s["multipleOf"];
      if (!m.is_number() || !(m.get<double>() > 0)) err(path + "/multipleOf", "must be a positive number");
      const double x = m.get<double>();
      int d = x == 1 ? 0 : -1;
      for (int k = 1; k <= 16 && d < 0 && !integer; ++k)
        if (std::fabs(x * std::pow(10.0, k) - 1) < 1e-9) d = k;
      if (d < 0) err(path + "/multipleOf", "multipleOf ", m.dump(), " is not supported (1, and 0.1, 0.01, ... on numbers, are)");
      digits = std::min(digits, d);
    }
    if (!lo && !hi && digits == (integer ? 0 : 16)) return integer ? "json-int" : "json-number";
    try {
      return number_range_gbnf(lo, hi, digits);
    } catch (const Error& e) {
      err(path, e.what());
    }
  }

  std::string string(const json& s, const std::string& path) {
    const bool sized = s.contains("minLength") || s.contains("maxLength");
    if (s.contains("pattern")) {
      const json& p = s["pattern"];
      if (!p.is_string()) err(path + "/pattern", "must be a string");
      if (s.contains("format") || sized) err(path + "/pattern", "a pattern together with format or minLength/maxLength is not supported");
      try {
        return regex_to_json_string_gbnf(p.get<std::string>());
      } catch (const Error& e) {
        err(path + "/pattern", e.what());
      }
    }
    if (s.contains("format")) {
      static const std::map<std::string, std::string> formats = {
          {"date", "json-date"}, {"time", "json-time"}, {"date-time", "json-date \"T\" json-time"},
          {"uuid", "json-uuid"}, {"ipv4", "json-ipv4"}, {"ipv6", "json-ipv6"}, {"hostname", "json-hostname"},
          {"email", "json-email"}};
      const json& f = s["format"];
      auto it = f.is_string() ? formats.find(f.get<std::string>()) : formats.end();
      if (it == formats.end())
        err(path + "/format", "the format ", f.dump(), " is not supported (date, time, date-time, uuid, ipv4, ipv6, hostname, email are)");
      if (sized) err(path + "/format", "a format together with minLength/maxLength is not supported");
      return "( \"\\\"\" " + it->second + " \"\\\"\" )";
    }
    const uint64_t lo = count(s, "minLength", path, 0), hi = count(s, "maxLength", path, UINT64_MAX);
    if (lo == 0 && hi == UINT64_MAX) return "json-string";
    if (lo > 10000 || (hi != UINT64_MAX && hi > 10000)) err(path, "minLength/maxLength above 10000 are not supported");
    if (hi < lo) err(path + "/maxLength", "is below minLength");
    return "( \"\\\"\" json-char{" + std::to_string(lo) + "," + (hi == UINT64_MAX ? "" : std::to_string(hi)) +
           "} \"\\\"\" )";
  }

  std::string array(const json& s, const std::string& path) {
    uint64_t lo = count(s, "minItems", path, 0), hi = count(s, "maxItems", path, UINT64_MAX);
    if (lo > 1000 || (hi != UINT64_MAX && hi > 1000)) err(path, "minItems/maxItems above 1000 are not supported");
    if (hi < lo) err(path + "/maxItems", "is below minItems");
    // A tuple: prefixItems (or draft 7's items array), then `items` (additionalItems) for the rest.
    const bool draft7 = s.contains("items") && s["items"].is_array();
    const char* tuple_key = draft7 ? "items" : "prefixItems";
    const char* rest_key = draft7 ? "additionalItems" : "items";
    if (s.value("uniqueItems", false) && hi > 1) {  // (an array of at most one item is unique)
      if (s.contains(tuple_key)) err(path + "/uniqueItems", "uniqueItems beside '", tuple_key, "' is not supported");
      std::optional<std::vector<json>> values;
      listed_visits_ = 0;
      if (s.contains(rest_key) && s[rest_key].is_object()) values = listed_values(s[rest_key], path + "/" + rest_key, 0);
      if (!values || values->size() > kMaxUniqueValues)
        err(path + "/uniqueItems", "uniqueItems is supported on items of at most ", kMaxUniqueValues,
            " listed values (enum, const, boolean, null), where the grammar can track which were written");
      if (lo > values->size()) err(path + "/minItems", "is above the ", values->size(), " distinct values the items allow");
      return unique_array(*values, lo, std::min<uint64_t>(hi, values->size()));
    }
    std::vector<std::string> prefix;
    if (s.contains(tuple_key)) {
      const json& t = s[tuple_key];
      if (!t.is_array()) err(path + "/" + tuple_key, "must be an array of schemas");
      if (t.size() > 1000) err(path + "/" + tuple_key, "more than 1000 items are not supported");
      // Every prefix item is written (up to maxItems): a shorter array would also be valid.
      for (size_t i = 0; i < t.size() && i < hi; ++i) prefix.push_back(gen(t[i], path + "/" + tuple_key + "/" + std::to_string(i)));
    }
    const bool rest_allowed = !(s.contains(rest_key) && s[rest_key] == false);
    if (!rest_allowed) {
      if (lo > prefix.size()) err(path + "/minItems", "needs more items than '", rest_key, "': false allows");
      hi = prefix.size();
    }
    const std::string item = s.contains(rest_key) && s[rest_key].is_object()
                                 ? gen(s[rest_key], path + "/" + rest_key) : "json-value";
    if (!prefix.empty()) {
      std::string body;
      for (size_t i = 0; i < prefix.size(); ++i) body += (i ? " \",\" ws " : "") + prefix[i] + " ws ";
      const uint64_t n = prefix.size(), more_lo = lo > n ? lo - n : 0;
      if (hi > n) {
        body += "( \",\" ws " + new_rule(item) + " ws ){" + std::to_string(more_lo) + "," +
                (hi == UINT64_MAX ? "" : std::to_string(hi - n)) + "} ";
      }
      return "( \"[\" ws " + body + "\"]\" )";
    }
    if (hi == 0) return "( \"[\" ws \"]\" )";
    const std::string it = new_rule(item);
    const std::string more = "( \",\" ws " + it + " ws ){" + std::to_string(lo ? lo - 1 : 0) + "," +
                             (hi == UINT64_MAX ? "" : std::to_string(hi - 1)) + "}";
    const std::string body = it + " ws " + more;
    return "( \"[\" ws " + (lo ? body : "( " + body + " )?") + " \"]\" )";
  }

  // The values a schema allows when it lists them (enum, const, boolean, null, unions of those),
  // each once (JSON equality: 1 and 1.0 are one value); nullopt for any other schema, and for more
  // than kMaxListed values or kMaxListedVisits schemas visited (a stranger's anyOf of $refs to
  // anyOfs would otherwise take exponential time).
  std::optional<std::vector<json>> listed_values(const json& s, const std::string& path, int depth) {
    if (!s.is_object() || depth > 32 || ++listed_visits_ > kMaxListedVisits) return std::nullopt;
    for (const auto& [k, v] : s.items()) check_keyword(k, s, path);  // refuse what gen() refuses
    if (s.contains("$ref")) return listed_values(resolve(s["$ref"], path + "/$ref"), path, depth + 1);
    const json types = !s.contains("type") ? json::array() : s["type"].is_array() ? s["type"] : json::array({s["type"]});
    auto typed_ok = [&](const json& v) {  // a listed value must also have one of the types beside it
      return types.empty() || std::any_of(types.begin(), types.end(), [&](const json& t) { return type_of(v, t); });
    };
    for (const char* k : {"enum", "anyOf", "oneOf"})
      if (s.contains(k) && (!s[k].is_array() || s[k].empty())) err(path + "/" + k, "must be a non-empty array");
    std::vector<json> all;
    if (s.contains("const") || s.contains("enum")) {
      const json& vals = s.contains("const") ? json::array({s["const"]}) : s["enum"];
      if (vals.size() > kMaxListed) return std::nullopt;
      for (const json& v : vals)
        if (typed_ok(v)) all.push_back(v);
    } else if (s.contains("anyOf") || s.contains("oneOf")) {
      const bool one = !s.contains("anyOf");
      std::vector<std::vector<json>> alts;
      size_t n = 0;
      for (const json& alt : one ? s["oneOf"] : s["anyOf"]) {
        auto v = listed_values(alt, path, depth + 1);
        if (!v || (n += v->size()) > kMaxListed) return std::nullopt;
        alts.push_back(std::move(*v));
      }
      for (const auto& a : alts)
        for (const json& v : a) {
          const auto in = std::count_if(alts.begin(), alts.end(), [&](const auto& b) { return std::find(b.begin(), b.end(), v) != b.end(); });
          if ((!one || in == 1) && typed_ok(v)) all.push_back(v);  // oneOf: a value in two alternatives fails
        }
    } else if (!types.empty()) {
      for (const json& t : types) {
        if (t == "boolean") all.insert(all.end(), {json(false), json(true)});
        else if (t == "null") all.push_back(nullptr);
        else return std::nullopt;
      }
    } else {
      return std::nullopt;
    }
    std::vector<json> distinct;
    for (const json& v : all)
      if (std::find(distinct.begin(), distinct.end(), v) == distinct.end()) distinct.push_back(v);
    return distinct;
  }

  static bool type_of(const json& v, const json& t) {
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::trunc(v.get<double>()) == v.get<double>());
    if (t == "number") return v.is_number();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    if (t == "array") return v.is_array();
    return t == "object" && v.is_object();
  }

  // An array of lo..hi distinct values: one rule per set of values written so far (a bit mask),
  // whose alternatives are "]" and ", v" for each value v not yet in the set.
  std::string unique_array(const std::vector<json>& values, uint64_t lo, uint64_t hi) {
    std::map<uint32_t, std::string> after;  // set written -> rule for the rest of the array
    auto rest = [&](auto&& self, uint32_t written) -> std::string {
      if (auto it = after.find(written); it != after.end()) return it->second;
      const int n = std::popcount(written);
      std::vector<std::string> alts;
      if (uint64_t(n) >= lo) alts.push_back("\"]\"");
      if (uint64_t(n) < hi)
        for (size_t i = 0; i < values.size(); ++i)
          if (!(written >> i & 1)) alts.push_back("\",\" ws " + literal(values[i].dump()) + " ws " + self(self, written | 1u << i));
      return after[written] = new_rule(gbnf_one_of(alts));
    };
    std::vector<std::string> first;
    if (lo == 0) first.push_back("\"]\"");
    for (size_t i = 0; i < values.size(); ++i) first.push_back(literal(values[i].dump()) + " ws " + rest(rest, 1u << i));
    return "( \"[\" ws " + gbnf_one_of(first) + " )";
  }

  std::string object(const json& s, const std::string& path) {
    if (s.contains("properties") && !s["properties"].is_object()) err(path + "/properties", "must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) err(path + "/required", "must be an array of names");
      for (const json& r : s["required"]) {
        if (!r.is_string()) err(path + "/required", "must be an array of names");
        required.insert(r.get<std::string>());
      }
    }
    const json props = s.value("properties", json::object());
    for (const std::string& r : required)
      if (!props.contains(r)) err(path + "/required", "names '", r, "', which is not in properties");
    const uint64_t lo = count(s, "minProperties", path, 0), hi = count(s, "maxProperties", path, UINT64_MAX);
    if (hi < lo) err(path + "/maxProperties", "is below minProperties");
    if (props.empty()) return free_object(s, path, lo, hi);
    for (const char* k : {"patternProperties", "propertyNames"})
      if (s.contains(k)) err(path + "/" + k, "'", k, "' beside 'properties' is not supported");
    // Only declared properties are written (fewer than additionalProperties may allow, which
    // validates). min/maxProperties choose which: the first optional ones in declared order
    // become required until there are minProperties, and the last ones are left out until at
    // most maxProperties remain.
    std::vector<std::string> names;
    for (const auto& [k, v] : props.items()) names.push_back(k);
    if (lo > names.size()) err(path + "/minProperties", "needs more properties than 'properties' declares");
    if (required.size() > hi) err(path + "/maxProperties", "is below the number of required properties");
    std::vector<bool> req;
    for (const std::string& k : names) req.push_back(required.count(k) > 0);
    uint64_t n_req = required.size();
    for (size_t i = 0; i < names.size() && n_req < lo; ++i)
      if (!req[i]) req[i] = true, ++n_req;
    std::vector<bool> keep(names.size(), true);
    for (size_t i = names.size(), n = names.size(); i-- > 0 && n > hi;)
      if (!req[i]) keep[i] = false, --n;
    // Properties in the declared order; optional ones may be left out. rest[i]: properties i..
    // after at least one was written (so each starts with a comma).
    std::vector<std::string> kv;
    std::vector<bool> kv_req;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!keep[i]) continue;
      const std::string& k = names[i];
      kv.push_back(literal(json(k).dump()) + " ws \":\" ws " + gen(props[k], path + "/properties/" + escape_pointer(k)) + " ws");
      kv_req.push_back(req[i]);
    }
    const size_t n = kv.size();
    if (n == 0) return kEmptyObject;  // maxProperties 0
    std::vector<std::string> rest(n + 1);
    rest[n] = "";
    for (size_t i = n; i-- > 0;) {
      const std::string item = "\",\" ws " + kv[i];
      const std::string body = kv_req[i] ? item + " " + rest[i + 1] : "( " + item + " )? " + rest[i + 1];
      rest[i] = new_rule(body);
    }
    // The first property written is i: every one before it is optional.
    std::string first;
    for (size_t i = 0; i < n; ++i) {
      first += (first.empty() ? "" : " | ") + kv[i] + " " + rest[i + 1];
      if (kv_req[i]) break;
    }
    const bool all_optional = std::none_of(kv_req.begin(), kv_req.end(), [](bool r) { return r; });
    const std::string inner = all_optional ? "( " + first + " )?" : "( " + first + " )";
    return "( \"{\" ws " + inner + " \"}\" )";
  }

  // An object without declared properties: names from patternProperties' pattern or
  // propertyNames, values from its schema or additionalProperties, [lo, hi] of them.
  std::string free_object(const json& s, const std::string& path, uint64_t lo, uint64_t hi) {
    // A name written twice counts once where the object is read: at least 2 cannot be enforced.
    if (lo > 1) err(path + "/minProperties", "above 1 is supported only with declared 'properties'");
    if (hi > 1000 && hi != UINT64_MAX) err(path + "/maxProperties", "above 1000 is not supported");
    std::string key = "json-string", value;
    if (s.contains("patternProperties")) {
      // Only names that match the pattern are written, with its schema's values; names that
      // match none (additionalProperties) are left out, which validates.
      const json& pp = s["patternProperties"];
      if (!pp.is_object() || pp.size() != 1)
        err(path + "/patternProperties", "only one pattern is supported (a name matching two must satisfy both)");
      if (s.contains("propertyNames")) err(path + "/propertyNames", "'propertyNames' beside 'patternProperties' is not supported");
      const std::string pattern = pp.begin().key();
      const std::string where = path + "/patternProperties/" + escape_pointer(pattern);
      try {
        key = regex_to_json_string_gbnf(pattern);
      } catch (const Error& e) {
        err(where, e.what());
      }
      value = gen(pp.begin().value(), where);
    } else {
      const json add = s.value("additionalProperties", json(true));
      if (add == false) {
        if (lo > 0) err(path + "/minProperties", "needs properties that 'additionalProperties': false forbids");
        return kEmptyObject;
      }
      value = add.is_object() ? gen(add, path + "/additionalProperties") : "json-value";
      if (s.contains("propertyNames")) key = property_names(s["propertyNames"], path + "/propertyNames");
    }
    if (hi == 0) return kEmptyObject;
    const std::string kv = new_rule(key + " ws \":\" ws " + value + " ws");
    const std::string more = "( \",\" ws " + kv + " ){0," + (hi == UINT64_MAX ? "" : std::to_string(hi - 1)) + "}";
    const std::string body = kv + " " + more;
    return "( \"{\" ws " + (lo ? body : "( " + body + " )?") + " \"}\" )";
  }

  // A string schema for names: `type` may be left out (names are strings).
  std::string property_names(const json& p, const std::string& path) {
    if (p == true) return "json-string";
    if (!p.is_object()) err(path, "must be a schema object");
    static const std::set<std::string> allowed = {"type", "pattern", "minLength", "maxLength", "format", "enum", "const"};
    for (const auto& [k, v] : p.items())
      if (!allowed.count(k)) err(path + "/" + escape_pointer(k), "'", k, "' is not supported in propertyNames");
    if (p.contains("type") && p["type"] != "string") err(path + "/type", "names are strings");
    for (const char* k : {"enum", "const"}) {
      if (!p.contains(k)) continue;
      const json vals = std::string(k) == "enum" ? p[k] : json::array({p[k]});
      if (!vals.is_array() || vals.empty()) err(path + "/" + k, "must be a non-empty array");
      for (const json& v : vals)
        if (!v.is_string()) err(path + "/" + k, "names are strings, not ", v.dump());
    }
    json typed = p;
    typed["type"] = "string";
    return gen(typed, path);
  }

  static constexpr size_t kMaxListed = 64;
  static constexpr int kMaxListedVisits = 4096;

  const json& root_;
  std::string prefix_;
  int listed_visits_ = 0;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::map<std::string, std::string> refs_;
  int depth_ = 0;
};

}  // namespace

std::string json_schema_to_grammar(const nlohmann::ordered_json& schema) { return Converter(schema).run(); }

std::string json_schema_text_to_grammar(std::string_view schema_text) {
  return json_schema_to_grammar(parse_ordered_json(schema_text, "json_schema"));
}

std::string json_schema_rules(const nlohmann::ordered_json& schema, const std::string& name) {
  return Converter(schema, name + "-").rules(name);
}

std::string json_primitive_rules() { return Converter::primitives(); }

std::string json_object_grammar() {
  std::string out = "root ::= json-object\n";
  for (const auto& p : kPrimitives) out += std::string(p[0]) + " ::= " + p[1] + "\n";
  return out;
}

}  // namespace camelid
