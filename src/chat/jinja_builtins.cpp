// Filters and tests, with Jinja2/Python behaviour. Text work is in jinja_text.cpp, methods and
// container primitives in jinja_methods.cpp; all of it charges the render's budget.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "chat/jinja.h"
#include "chat/jinja_text.h"

namespace camelid::jinja {
namespace {

// Attribute of each item, dotted paths allowed ("function.name").
Value attribute(const Value& item, const std::string& path) {
  Value v = item;
  size_t b = 0;
  while (b <= path.size()) {
    tick(1);
    const size_t e = path.find('.', b);
    v = subscript(v, Value(path.substr(b, e == std::string::npos ? std::string::npos : e - b)));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return v;
}

List select(const Value& v, Args& a, bool by_attr, bool keep) {
  List out;
  const size_t first = by_attr ? 1 : 0;
  const std::string attr = by_attr ? str_arg(a, 0, "attribute") : "";
  const Value* test = a.pos.size() > first ? &a.pos[first] : nullptr;
  for (const Value& item : iterate(v)) {
    tick(1);
    const Value x = by_attr ? attribute(item, attr) : item;
    bool ok;
    if (!test) {
      ok = x.truthy();
    } else {
      Args targs;
      targs.pos.assign(a.pos.begin() + long(first) + 1, a.pos.end());
      ok = apply_test(test->to_str(), x, targs);
    }
    if (ok == keep) out.push_back(item);
  }
  return out;
}

// jinja2's int filter: int(x), else int(float(x)), else the default. Past int64 is an error
// (Python would give a big int).
Value to_int(const Value& v, const Args& a) {
  if (v.is_number() || v.kind() == Value::Kind::Bool) return Value(v.as_int());
  if (v.is_string()) {
    std::string s = strip(v.str(), kWs, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (!s.empty() && s.find_first_not_of("+-0123456789") == std::string::npos) {
      errno = 0;
      char* end = nullptr;
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == 0) {
        if (errno == ERANGE) throw LimitError("integer overflow: " + s.substr(0, 40) + " does not fit in 64 bits");
        return Value(int64_t(i));
      }
    }
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == 0 && !std::isnan(d)) return Value(Value(d).as_int());
  }
  return Value(int_arg(a, 0, "default", 0));
}

Value sum(const List& l) {
  Value acc(int64_t(0));
  for (const Value& x : l) {
    tick(1);
    acc = binary_op("+", acc, x);
  }
  return acc;
}

// Each filter is a function of its own: map(filter) applies filters by name, so a chain of them
// is a recursion, and its frames stay small (one filter's locals, not all of them).
using Filter = Value (*)(const std::string& f, const Value& v, Args& a);

// Markup in, Markup out: the filters that call a str method of their input (jinja2's soft_str).
Value same_kind(const Value& in, std::string out) { return in.is_safe() ? Value::markup(std::move(out)) : Value(std::move(out)); }

Value f_trim(const std::string& f, const Value& v, Args& a) {
  const Value* chars = a.get(0, "chars");
  return same_kind(v, strip(v.to_str(), chars && !chars->is_none() ? chars->to_str() : kWs, true, true));
}
// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(const std::string& f, const Value& v, Args& a) {
  Value::JsonStyle st;
  const Value* ind = a.get(1, "indent");
  if (const Value* ea = a.get(0, "ensure_ascii")) st.ensure_ascii = ea->truthy();
  if (ind && !ind->is_none() && !ind->is_undefined()) {
    st.pretty = true, st.item_sep = ",";
    if (ind->is_string()) {
      st.indent = ind->str();
    } else {
      const int64_t n = ind->as_int();
      check_string_size(size_t(std::max<int64_t>(n, 0)));
      check_memory(size_t(std::max<int64_t>(n, 0)));
      st.indent.assign(size_t(std::max<int64_t>(n, 0)), ' ');
    }
  }
  if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none() && !sep->is_undefined()) {
    if (!sep->is_list() || sep->list().size() != 2) bad("tojson: separators must be a pair of strings");
    st.item_sep = sep->list()[0].to_str(), st.key_sep = sep->list()[1].to_str();
  }
  if (const Value* sk = a.get(3, "sort_keys")) st.sort_keys = sk->truthy();
  return Value(v.to_json(st));
}
Value f_length(const std::string& f, const Value& v, Args& a) {
  if (v.is_string()) return Value(int64_t(char_count(v.str())));
  if (v.is_list()) return Value(int64_t(v.list().size()));
  if (v.is_dict()) return Value(int64_t(v.dict().size()));
  if (v.is_undefined()) return Value(int64_t(0));
  bad(std::string("object of type '") + v.type_name() + "' has no len()");
}
Value f_string(const std::string& f, const Value& v, Args& a) {
  return v.is_string() ? v : Value(v.to_str());
}
Value f_int(const std::string& f, const Value& v, Args& a) {
  return to_int(v, a);
}
Value f_float(const std::string& f, const Value& v, Args& a) {
  if (v.is_number() || v.kind() == Value::Kind::Bool) return Value(v.as_double());
  if (v.is_string()) {
    char* end = nullptr;
    const double d = std::strtod(v.str().c_str(), &end);
    if (!v.str().empty() && end && *end == 0) return Value(d);
  }
  const Value* d = a.get(0, "default");
  return d ? Value(d->as_double()) : Value(0.0);
}
Value f_lower(const std::string& f, const Value& v, Args& a) {
  return same_kind(v, lower(v.to_str()));
}
Value f_upper(const std::string& f, const Value& v, Args& a) {
  return same_kind(v, upper(v.to_str()));
}
Value f_title(const std::string& f, const Value& v, Args& a) {
  return same_kind(v, title(v.to_str()));
}
Value f_capitalize(const std::string& f, const Value& v, Args& a) {
  return same_kind(v, capitalize(v.to_str()));
}
Value f_first(const std::string& f, const Value& v, Args& a) {
  if (v.is_list()) return v.list().empty() ? Value() : f == "first" ? v.list().front() : v.list().back();
  const List items = iterate(v);
  if (items.empty()) return Value();
  return f == "first" ? items.front() : items.back();
}
Value f_join(const std::string& f, const Value& v, Args& a) {
  const Value* attr = a.get(Args::kKeywordOnly, "attribute");
  const std::string sep = a.get(0, "d") ? a.get(0, "d")->to_str() : "";
  List items = iterate(v);
  if (attr)
    for (Value& x : items) x = attribute(x, attr->to_str());
  return Value(join(items, sep));
}
Value f_default(const std::string& f, const Value& v, Args& a) {
  const Value* b = a.get(1, "boolean");
  const bool use_default = v.is_undefined() || (b && b->truthy() && !v.truthy());
  if (!use_default) return v;
  const Value* d = a.get(0, "default_value");
  return d ? *d : Value("");
}
Value f_list(const std::string& f, const Value& v, Args& a) {
  return Value(iterate(v));
}
Value f_items(const std::string& f, const Value& v, Args& a) {
  if (v.is_undefined()) return Value(List{});
  if (!v.is_dict()) bad("items filter needs a mapping");
  List out;
  for (auto& [k, x] : v.dict()) out.push_back(Value::tuple(List{Value(k), x}));
  return Value(std::move(out));
}
Value f_replace(const std::string& f, const Value& v, Args& a) {
  return Value(replace(v.to_str(), str_arg(a, 0, "old"), str_arg(a, 1, "new"), int_arg(a, 2, "count", -1)));
}
Value f_selectattr(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, true, true));
}
Value f_rejectattr(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, true, false));
}
Value f_select(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, false, true));
}
Value f_reject(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, false, false));
}
Value f_map(const std::string& f, const Value& v, Args& a) {
  List out;
  const Value* attr = a.get(Args::kKeywordOnly, "attribute");
  if (!attr && a.pos.empty()) bad("map() needs a filter name or attribute=");
  const std::string filter = attr ? "" : str_arg(a, 0, "filter");
  for (const Value& x : iterate(v)) {
    tick(1);
    if (attr) {
      Value r = attribute(x, attr->to_str());
      const Value* def = a.get(Args::kKeywordOnly, "default");
      out.push_back(r.is_undefined() && def ? *def : r);
    } else {
      tick_items(a.pos.size());
      Args rest;
      rest.pos.assign(a.pos.begin() + 1, a.pos.end());
      out.push_back(apply_filter(filter, x, rest));
    }
  }
  return Value(std::move(out));
}
Value f_indent(const std::string& f, const Value& v, Args& a) {
  const Value* fl = a.get(1, "first");
  const Value* bl = a.get(2, "blank");
  const Value* w = a.get(0, "width");
  if (w && w->is_string()) bad("indent: a string width is not supported");
  return same_kind(v, indent(v.to_str(), int_arg(a, 0, "width", 4), fl && fl->truthy(), bl && bl->truthy()));
}
Value f_round(const std::string& f, const Value& v, Args& a) {
  const int64_t prec = std::clamp<int64_t>(int_arg(a, 0, "precision", 0), -400, 400);
  const Value* m = a.get(1, "method");
  const std::string method = m ? m->to_str() : "common";
  const double scale = std::pow(10.0, double(prec)), x = v.as_double() * scale;
  if (!std::isfinite(x) || !std::isfinite(scale) || scale == 0) return Value(v.as_double());
  const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
  return Value(r / scale);
}
Value f_abs(const std::string& f, const Value& v, Args& a) {
  return v.kind() == Value::Kind::Float ? Value(std::fabs(v.as_double())) : Value(checked_abs(v.as_int()));
}
// The key sort/unique/min/max/dictsort/groupby compare by: the item or its attribute, strings
// lower-cased unless case_sensitive (jinja2's default is case-insensitive).
Value sort_key(const Value& item, const Value* attr, bool case_sensitive) {
  Value k = attr && !attr->is_none() ? attribute(item, attr->to_str()) : item;
  return !case_sensitive && k.is_string() ? Value(lower(k.str())) : k;
}
bool case_sensitive(const Args& a, size_t i) {
  const Value* c = a.get(i, "case_sensitive");
  return c && c->truthy();
}

Value f_unique(const std::string& f, const Value& v, Args& a) {
  const bool cs = case_sensitive(a, 0);
  const Value* attr = a.get(1, "attribute");
  List out, keys;
  for (const Value& x : iterate(v)) {
    Value k = sort_key(x, attr, cs);
    tick_items(keys.size());
    if (std::none_of(keys.begin(), keys.end(), [&](const Value& y) { return equal(k, y); })) out.push_back(x), keys.push_back(k);
  }
  return Value(std::move(out));
}
Value f_reverse(const std::string& f, const Value& v, Args& a) {
  if (v.is_string()) return slice(v, Value::none(), Value::none(), Value(int64_t(-1)));
  List l = iterate(v);
  std::reverse(l.begin(), l.end());
  return Value(std::move(l));
}
Value f_sort(const std::string& f, const Value& v, Args& a) {
  const List items = iterate(v);
  const Value* rev = a.get(0, "reverse");
  const bool cs = case_sensitive(a, 1);
  const Value* attr = a.get(2, "attribute");
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(sort_key(items[i], attr, cs), i);
  // compare() is deterministic (NaN compares equal to everything), which is all stable_sort
  // needs to stay in bounds; it throws for unorderable items, which stable_sort passes on.
  // Reverse sorts stay stable, as Python's sorted(reverse=True).
  const bool reverse = rev && rev->truthy();
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
  });
  List l;
  for (auto& [k, i] : keyed) l.push_back(items[i]);
  return Value(std::move(l));
}
Value f_dictsort(const std::string& f, const Value& v, Args& a) {
  if (!v.is_dict()) bad("dictsort filter needs a mapping");
  const bool cs = case_sensitive(a, 0);
  const Value* by = a.get(1, "by");
  const bool by_value = by && by->is_string() && by->str() == "value";
  if (by && !(by->is_string() && (by->str() == "key" || by->str() == "value"))) bad("You can only sort by either \"key\" or \"value\"");
  const Value* rev = a.get(2, "reverse");
  const bool reverse = rev && rev->truthy();
  List out;
  for (auto& [k, x] : v.dict()) out.push_back(Value::tuple(List{Value(k), x}));
  std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
    const Value kx = sort_key(x.list()[by_value], nullptr, cs), ky = sort_key(y.list()[by_value], nullptr, cs);
    return reverse ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
  });
  return Value(std::move(out));
}
Value f_sum(const std::string& f, const Value& v, Args& a) {
  List l = iterate(v);
  if (f == "sum") {
    if (const Value* attr = a.get(0, "attribute"))
      for (Value& x : l) x = attribute(x, attr->to_str());
    Value total = sum(l);
    const Value* start = a.get(1, "start");
    return start ? binary_op("+", *start, total) : total;
  }
  if (l.empty()) return Value();
  const bool cs = case_sensitive(a, 0);
  const Value* attr = a.get(1, "attribute");
  Value best = l[0], best_key = sort_key(l[0], attr, cs);
  for (const Value& x : l) {
    Value k = sort_key(x, attr, cs);
    if (f == "min" ? compare(k, best_key) < 0 : compare(k, best_key) > 0) best = x, best_key = k;
  }
  return best;
}
Value f_safe(const std::string& f, const Value& v, Args& a) {
  return v.is_safe() ? v : Value::markup(v.to_str());
}
Value f_escape(const std::string& f, const Value& v, Args& a) {
  return f == "forceescape" ? Value::markup(html_escape(v.to_str())) : escape_value(v);
}
Value f_format(const std::string& f, const Value& v, Args& a) {
  if (!a.pos.empty() && !a.kw.empty()) bad("can't handle positional and keyword arguments at the same time");
  Dict kw(a.kw.begin(), a.kw.end());
  const Value fmt = v.is_string() ? v : Value(v.to_str());
  return py_format(fmt, a.kw.empty() ? Value::tuple(a.pos) : Value(std::move(kw)));
}
Value f_center(const std::string& f, const Value& v, Args& a) {
  const std::string s = v.to_str();
  const int64_t width = int_arg(a, 0, "width", 80), n = int64_t(char_count(s));
  if (width <= n) return Value(s);
  check_string_size(size_t(width - n) + s.size());
  // Python's str.center: the extra space goes left when the padding and the width are both odd.
  const int64_t pad = width - n, left = pad / 2 + (pad & width & 1);
  return Value(std::string(size_t(left), ' ') + s + std::string(size_t(pad - left), ' '));
}
Value f_truncate(const std::string& f, const Value& v, Args& a) {
  const std::string s = v.to_str();
  const int64_t length = int_arg(a, 0, "length", 255);
  const Value* kw = a.get(1, "killwords");
  const Value* end_v = a.get(2, "end");
  const std::string end = end_v ? end_v->to_str() : "...";
  const int64_t leeway = int_arg(a, 3, "leeway", 5);
  if (length < int64_t(char_count(end))) bad("expected length >= " + std::to_string(char_count(end)) + ", got " + std::to_string(length));
  if (leeway < 0) bad("expected leeway >= 0, got " + std::to_string(leeway));
  if (int64_t(char_count(s)) <= length + leeway) return Value(s);
  std::string cut = s.substr(0, char_offset(s, size_t(length - int64_t(char_count(end)))));
  if (kw && kw->truthy()) return Value(cut + end);
  const size_t space = cut.rfind(' ');
  return Value((space == std::string::npos ? std::string() : cut.substr(0, space)) + end);
}
// Python's \w for a code point beyond ASCII, without Unicode tables: letters and digits of the
// scripts, but not the symbol, punctuation, emoji and private-use blocks (an approximation).
bool word_code_point(uint32_t cp) {
  if (cp < 0xC0) return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 || cp == 0xBA || (cp >= 0xBC && cp <= 0xBE);
  if (cp == 0xD7 || cp == 0xF7) return false;
  if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xE000 && cp <= 0xF8FF) ||
      (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0x1F000 && cp <= 0x1FAFF))
    return false;
  return true;
}
Value f_wordcount(const std::string& f, const Value& v, Args& a) {
  const std::string s = v.to_str();  // len(re.findall(r"\w+", s))
  tick_bytes(s.size());
  int64_t n = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = uint8_t(s[i]);
    const int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    uint32_t cp = extra == 3 ? c & 0x07 : extra == 2 ? c & 0x0F : extra == 1 ? c & 0x1F : c;
    size_t j = i + 1;
    for (int k = 0; k < extra && j < s.size() && (uint8_t(s[j]) & 0xC0) == 0x80; ++k) cp = (cp << 6) | (uint8_t(s[j++]) & 0x3F);
    const bool w = c < 0x80 ? (std::isalnum(c) || c == '_') : word_code_point(cp);
    n += w && !in_word;
    in_word = w;
    i = j;
  }
  return Value(n);
}
Value f_batch(const std::string& f, const Value& v, Args& a) {
  const int64_t n = int_arg(a, 0, "linecount", 1);
  if (n <= 0) bad("batch: linecount must be positive");
  const Value* fill = a.get(1, "fill_with");
  List out, row;
  for (const Value& x : iterate(v)) {
    row.push_back(x);
    if (int64_t(row.size()) == n) out.push_back(Value(std::move(row))), row = List{};
  }
  if (!row.empty()) {
    if (fill && !fill->is_none()) {
      check_memory(size_t(n - int64_t(row.size())) * sizeof(Value));
      tick_items(size_t(n - int64_t(row.size())));
      while (int64_t(row.size()) < n) row.push_back(*fill);
    }
    out.push_back(Value(std::move(row)));
  }
  return Value(std::move(out));
}
Value f_slice(const std::string& f, const Value& v, Args& a) {
  const List items = iterate(v);
  const int64_t slices = int_arg(a, 0, "slices", 1);
  if (slices <= 0) bad("slice: slices must be positive");
  if (slices > int64_t(items.size()) + 1024) throw LimitError("slice: too many slices");
  const Value* fill = a.get(1, "fill_with");
  const int64_t len = int64_t(items.size()), per = len / slices, extra = len % slices;
  List out;
  int64_t offset = 0;
  for (int64_t i = 0; i < slices; ++i) {
    const int64_t start = offset + i * per;
    if (i < extra) ++offset;
    const int64_t end = offset + (i + 1) * per;
    List part(items.begin() + start, items.begin() + end);
    if (fill && !fill->is_none() && i >= extra && extra) part.push_back(*fill);
    out.push_back(Value(std::move(part)));
  }
  return Value(std::move(out));
}
Value f_groupby(const std::string& f, const Value& v, Args& a) {
  const std::string attr = str_arg(a, 0, "attribute");
  const Value* def = a.get(1, "default");
  const bool cs = case_sensitive(a, 2);
  List items = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;  // (compare key, shown grouper)
  for (const Value& x : items) {
    Value g = attribute(x, attr);
    if (g.is_undefined() && def) g = *def;
    keyed.emplace_back(!cs && g.is_string() ? Value(lower(g.str())) : g, g);
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return compare(keyed[x].first, keyed[y].first) < 0; });
  List out;
  for (size_t k = 0; k < order.size();) {
    List group;
    size_t j = k;
    while (j < order.size() && equal(keyed[order[j]].first, keyed[order[k]].first)) group.push_back(items[order[j++]]);
    out.push_back(Value::tuple(List{keyed[order[k]].second, Value(std::move(group))}));
    k = j;
  }
  return Value(std::move(out));
}

const std::pair<const char*, Filter> kFilters[] = {
    {"trim", f_trim},
    {"tojson", f_tojson},
    {"length", f_length}, {"count", f_length},
    {"string", f_string},
    {"int", f_int},
    {"float", f_float},
    {"lower", f_lower},
    {"upper", f_upper},
    {"title", f_title},
    {"capitalize", f_capitalize},
    {"first", f_first}, {"last", f_first},
    {"join", f_join},
    {"default", f_default}, {"d", f_default},
    {"list", f_list},
    {"items", f_items},
    {"replace", f_replace},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"select", f_select},
    {"reject", f_reject},
    {"map", f_map},
    {"indent", f_indent},
    {"round", f_round},
    {"abs", f_abs},
    {"unique", f_unique},
    {"reverse", f_reverse},
    {"sort", f_sort},
    {"dictsort", f_dictsort},
    {"sum", f_sum}, {"min", f_sum}, {"max", f_sum},
    {"safe", f_safe},
    {"escape", f_escape}, {"e", f_escape}, {"forceescape", f_escape},
    {"format", f_format},
    {"center", f_center},
    {"truncate", f_truncate},
    {"wordcount", f_wordcount},
    {"batch", f_batch},
    {"slice", f_slice},
    {"groupby", f_groupby},
};

}  // namespace

Value apply_filter(const std::string& f, const Value& v, Args& a) {
  DepthGuard guard;
  for (const auto& [name, fn] : kFilters)
    if (f == name) return fn(f, v, a);
  bad("no filter named '" + f + "'");
}

bool apply_test(const std::string& t, const Value& v, Args& a) {
  using K = Value::Kind;
  auto arg = [&]() -> const Value& {
    if (a.pos.empty()) bad("test '" + t + "' needs an argument");
    return a.pos[0];
  };
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.is_none();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number() || v.kind() == K::Bool;  // Python: bool is a Number
  if (t == "escaped") return v.is_safe();
  if (t == "sameas") return v.kind() == arg().kind() && (v.kind() == K::None || v.kind() == K::Undefined || (v.kind() == K::Bool && v.as_bool() == arg().as_bool()));
  if (t == "filter" || t == "test") {
    if (!v.is_string()) return false;
    const char* const filters[] = {"abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
                                   "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items",
                                   "join", "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject",
                                   "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort",
                                   "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
                                   "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"};
    const char* const tests[] = {"boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false",
                                 "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan",
                                 "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test",
                                 "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">="};
    auto has = [&](auto& names) { return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return v.str() == n; }); };
    return t == "filter" ? has(filters) : has(tests);
  }
  if (t == "integer") return v.kind() == K::Int;
  if (t == "float") return v.kind() == K::Float;
  if (t == "boolean") return v.kind() == K::Bool;
  if (t == "true") return v.kind() == K::Bool && v.as_bool();
  if (t == "false") return v.kind() == K::Bool && !v.as_bool();
  if (t == "mapping") return v.is_dict();
  if (t == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();  // jinja2's Undefined iterates (as empty)
  if (t == "sequence") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (t == "callable") return v.is_callable();
  if (t == "even") return py_mod(v.as_int(), 2) == 0;
  if (t == "odd") return py_mod(v.as_int(), 2) != 0;
  if (t == "divisibleby") return arg().as_int() != 0 && py_mod(v.as_int(), arg().as_int()) == 0;
  if (t == "eq" || t == "equalto" || t == "==") return equal(v, arg());
  if (t == "ne" || t == "!=") return !equal(v, arg());
  if (t == "lt" || t == "lessthan" || t == "<") return compare(v, arg()) < 0;
  if (t == "gt" || t == "greaterthan" || t == ">") return compare(v, arg()) > 0;
  if (t == "le" || t == "<=") return compare(v, arg()) <= 0;
  if (t == "ge" || t == ">=") return compare(v, arg()) >= 0;
  if (t == "in") return contains(arg(), v);
  if (t == "lower") return v.is_string() && lower(v.str()) == v.str();
  if (t == "upper") return v.is_string() && upper(v.str()) == v.str();
  bad("no test named '" + t + "'");
}

}  // namespace camelid::jinja
