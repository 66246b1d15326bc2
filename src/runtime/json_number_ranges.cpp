#include "runtime/json_number_ranges.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/error.h"
#include "runtime/gbnf_text.h"

namespace camelid {

namespace {

constexpr uint64_t kMaxNatural = 9999999999999999ULL;  // 16 digits, json-int's longest
constexpr int64_t kMaxBound = 1000000000000000LL;       // 10^15

std::string digit_class(char lo, char hi) {
  if (lo == hi) return std::string("\"") + lo + "\"";
  return std::string("[") + lo + "-" + hi + "]";
}

std::string any_digits(size_t n) {
  if (n == 0) return "";
  return n == 1 ? "[0-9]" : "[0-9]{" + std::to_string(n) + "}";
}

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : b.empty() ? a : a + " " + b; }

// Digit strings of one length between x and y (x <= y), leading zeros allowed.
std::string same_length(const std::string& x, const std::string& y) {
  if (x.empty()) return "";
  const std::string xr = x.substr(1), yr = y.substr(1);
  if (xr.find_first_not_of('0') == std::string::npos && yr.find_first_not_of('9') == std::string::npos)
    return join(digit_class(x[0], y[0]), any_digits(xr.size()));
  if (x[0] == y[0]) return join(digit_class(x[0], x[0]), same_length(xr, yr));
  std::vector<std::string> alts;
  alts.push_back(join(digit_class(x[0], x[0]), same_length(xr, std::string(xr.size(), '9'))));
  if (x[0] + 1 <= y[0] - 1) alts.push_back(join(digit_class(char(x[0] + 1), char(y[0] - 1)), any_digits(xr.size())));
  alts.push_back(join(digit_class(y[0], y[0]), same_length(std::string(yr.size(), '0'), yr)));
  return gbnf_one_of(alts);
}

// Digit strings as fractions: 0.a against 0.b.
int frac_cmp(const std::string& a, const std::string& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const char x = i < a.size() ? a[i] : '0', y = i < b.size() ? b[i] : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

// The fractions f in [0, 1) an integer part allows: lo <= f (lo < f when lo_open) and f <= hi
// (f < hi), lo and hi as the digits after the point without trailing zeros ("" is 0); no hi: f < 1.
struct FracRange {
  bool empty = true;
  std::string lo;
  bool lo_open = false;
  std::optional<std::string> hi;
  bool hi_open = false;
  bool operator==(const FracRange&) const = default;

  static FracRange all() { FracRange r; r.empty = false; return r; }
  static FracRange from(std::string lo, bool lo_open, std::optional<std::string> hi, bool hi_open) {
    FracRange r{false, std::move(lo), lo_open, std::move(hi), hi_open};
    if (r.hi) {
      const int c = frac_cmp(r.lo, *r.hi);
      if (c > 0 || (c == 0 && (r.lo_open || r.hi_open))) return FracRange{};
    }
    return r;
  }
  FracRange operator&(const FracRange& b) const {
    if (empty || b.empty) return FracRange{};
    std::string l = lo;
    bool lop = lo_open;
    const int c = frac_cmp(lo, b.lo);
    if (c < 0) l = b.lo, lop = b.lo_open;
    else if (c == 0) lop = lo_open || b.lo_open;
    std::optional<std::string> h = hi;
    bool hop = hi_open;
    if (b.hi && !hi) h = b.hi, hop = b.hi_open;
    else if (b.hi) {
      const int d = frac_cmp(*hi, *b.hi);
      if (d > 0) h = b.hi, hop = b.hi_open;
      else if (d == 0) hop = hi_open || b.hi_open;
    }
    return from(l, lop, h, hop);
  }
};

// One bound on a non-negative magnitude M = I + f: M against b + 0.phi.
struct Constraint {
  enum Kind { GE, GT, LE, LT } kind;
  int64_t b;
  std::string phi;
  FracRange allows(int64_t i) const {
    const bool above = kind == GE || kind == GT;
    if (above ? i > b : i < b) return FracRange::all();
    if (i != b) return FracRange{};
    switch (kind) {
      case GE: return FracRange::from(phi, false, std::nullopt, false);
      case GT: return FracRange::from(phi, true, std::nullopt, false);
      case LE: return FracRange::from("", false, phi, false);
      case LT: return FracRange::from("", false, phi, true);
    }
    return FracRange{};
  }
};

// Digit strings t of 1..r digits with 0.t within the range, whose ends are the digits still to
// match. `zero`: whether the empty remainder (0) is inside too.
struct FracTexts {
  bool zero;
  std::string more;  // "" when no non-empty string is inside
};

FracTexts frac_texts(const FracRange& range, int r) {
  if (range.empty) return {false, ""};
  const bool zero = range.lo.empty() && !range.lo_open && (!range.hi || !range.hi->empty() || !range.hi_open);
  if (r == 0) return {zero, ""};
  const std::string up_to = r == 1 ? "" : "[0-9]{0," + std::to_string(r - 1) + "}";
  if (range.lo.empty() && !range.lo_open && !range.hi) return {zero, r == 1 ? "[0-9]" : "[0-9]{1," + std::to_string(r) + "}"};
  if (range.lo.empty() && range.hi && range.hi->empty()) return {zero, r == 1 ? "\"0\"" : "\"0\"{1," + std::to_string(r) + "}"};
  const char l0 = range.lo.empty() ? '0' : range.lo[0];
  const char h0 = !range.hi ? '9' : range.hi->empty() ? '0' : (*range.hi)[0];
  std::vector<std::string> alts;
  auto add = [&](char a, char b, const FracRange& rest) {  // first digit in [a, b], then `rest`
    const FracTexts t = frac_texts(rest, r - 1);
    if (!t.zero && t.more.empty()) return;
    const std::string more = t.more.empty() ? "" : t.zero ? "( " + t.more + " )?" : t.more;
    alts.push_back(join(digit_class(a, b), more));
  };
  const std::string lo_rest = range.lo.empty() ? "" : range.lo.substr(1);
  const std::string hi_rest = !range.hi || range.hi->empty() ? "" : range.hi->substr(1);
  if (range.hi && l0 == h0) {
    add(l0, l0, FracRange::from(lo_rest, range.lo_open, hi_rest, range.hi_open));
  } else {
    add(l0, l0, FracRange::from(lo_rest, range.lo_open, std::nullopt, false));
    const char top = range.hi ? char(h0 - 1) : '9';
    if (l0 + 1 <= top) alts.push_back(join(digit_class(char(l0 + 1), top), up_to));
    if (range.hi) add(h0, h0, FracRange::from("", false, hi_rest, range.hi_open));
  }
  return {zero, alts.empty() ? "" : gbnf_one_of(alts)};
}

// The fraction's text (nothing, or "." and 1..digits digits) for a range; nullopt: none fits.
std::optional<std::string> fraction(const FracRange& range, int digits) {
  if (range.empty) return std::nullopt;
  const FracTexts t = frac_texts(range, digits);
  if (t.more.empty()) return t.zero ? std::optional<std::string>("") : std::nullopt;
  const std::string text = "\".\" " + (t.more.find('|') == std::string::npos ? t.more : "( " + t.more + " )");
  return t.zero ? "( " + text + " )?" : text;
}

// Texts of magnitudes I[.F] within every constraint, as alternatives. `sig`: at most 15
// significant digits (I >= 1: 15 - digits of I after the point; I = 0: 15).
void magnitudes(const std::vector<Constraint>& cs, int digits, bool sig, const std::string& sign, std::vector<std::string>& out) {
  // The allowed fractions change only at b and b + 1 of each constraint (and powers of 10 when
  // the digits after the point depend on the integer part's length).
  std::vector<int64_t> cuts = {0};
  for (const Constraint& c : cs)
    for (int64_t p : {c.b, c.b + 1})
      if (p > 0 && p <= int64_t(kMaxNatural)) cuts.push_back(p);
  if (sig)
    for (int64_t p = 1; p <= int64_t(kMaxNatural); p *= 10) cuts.push_back(p);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  cuts.push_back(int64_t(kMaxNatural) + 1);
  auto digits_at = [&](int64_t i) {
    return sig ? std::min(digits, std::max(0, 15 - (i == 0 ? 0 : int(std::to_string(i).size())))) : digits;
  };
  // Segments with the same fraction text merge, so a plain range stays one natural range.
  int64_t start = -1;
  std::optional<std::string> text;
  auto flush = [&](int64_t end) {
    if (start >= 0 && text) out.push_back(join(sign, join(natural_range_gbnf(uint64_t(start), uint64_t(end)), *text)));
    start = -1;
  };
  for (size_t s = 0; s + 1 < cuts.size(); ++s) {
    FracRange k = FracRange::all();
    for (const Constraint& c : cs) k = k & c.allows(cuts[s]);
    const std::optional<std::string> t = fraction(k, digits_at(cuts[s]));
    if (start >= 0 && t == text) continue;
    flush(cuts[s] - 1);
    if (t) start = cuts[s], text = t;
  }
  flush(cuts.back() - 1);
}

// 1 - 0.f as digits (f non-empty, no trailing zeros): the fraction of -(b + 0.f) = -(b + 1) + (1 - 0.f).
std::string complement(const std::string& f) {
  std::string out = f;
  for (size_t i = 0; i < out.size(); ++i) out[i] = char('9' - (f[i] - '0') + (i + 1 == out.size() ? 1 : 0));
  return out;
}

}  // namespace

std::string natural_range_gbnf(uint64_t a, uint64_t b) {
  if (a > b || b > kMaxNatural) fail("natural_range_gbnf: bad range ", a, "..", b);
  const std::string as = std::to_string(a), bs = std::to_string(b);
  std::vector<std::string> alts;
  for (size_t d = as.size(); d <= bs.size(); ++d) {
    const std::string lo = d == as.size() ? as : "1" + std::string(d - 1, '0');
    const std::string hi = d == bs.size() ? bs : std::string(d, '9');
    alts.push_back(same_length(lo, hi));
  }
  return gbnf_one_of(alts);
}

NumberBound parse_number_bound(const std::string& text, bool exclusive) {
  // sign, digits with the point removed, and the power of ten they are scaled by
  size_t i = 0;
  const bool neg = i < text.size() && text[i] == '-';
  if (neg) ++i;
  std::string digits;
  int exp10 = 0;
  bool point = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.' && !point) point = true;
    else if (text[i] >= '0' && text[i] <= '9') digits += text[i], exp10 -= point ? 1 : 0;
    else fail("numeric bound '", text, "' is not a decimal number");
  }
  if (i < text.size()) {
    const std::string e = text.substr(i + 1);
    const size_t d = e.find_first_not_of("+-") == 1 ? 1 : 0;  // one sign at most
    if (e.size() <= d || e.size() > 4 || e.find_first_not_of("0123456789", d) != std::string::npos) fail("numeric bound '", text, "' is not a decimal number");
    exp10 += std::stoi(e);
  }
  if (digits.empty() || exp10 < -400 || exp10 > 400) fail("numeric bound '", text, "' is not a decimal number");
  // integer part and fraction of the magnitude
  std::string whole, frac;
  if (exp10 >= 0) whole = digits + std::string(size_t(exp10), '0');
  else if (size_t(-exp10) >= digits.size()) whole = "0", frac = std::string(size_t(-exp10) - digits.size(), '0') + digits;
  else whole = digits.substr(0, digits.size() - size_t(-exp10)), frac = digits.substr(digits.size() - size_t(-exp10));
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size() - 1));
  if (whole.size() > 16 || std::stoll(whole) > kMaxBound) fail("numeric bounds beyond +-10^15 are not supported");
  int64_t w = std::stoll(whole);
  if (neg && !frac.empty()) return NumberBound{-w - 1, exclusive, complement(frac)};
  return NumberBound{neg ? -w : w, exclusive, frac};
}

std::string number_range_gbnf(std::optional<NumberBound> lo, std::optional<NumberBound> hi, int fraction_digits) {
  if (fraction_digits < 0 || fraction_digits > 16) fail("number_range_gbnf: fraction digits ", fraction_digits, " outside 0..16");
  for (const auto& b : {lo, hi}) {
    if (b && (b->value > kMaxBound || b->value < -kMaxBound)) fail("numeric bounds beyond +-10^15 are not supported");
    if (b && (b->fraction.size() > 400 || b->fraction.find_first_not_of("0123456789") != std::string::npos ||
              (!b->fraction.empty() && b->fraction.back() == '0')))
      fail("number_range_gbnf: bad fraction digits '", b->fraction, "'");
  }
  const bool sig = (lo && lo->exclusive) || (hi && hi->exclusive);
  std::vector<std::string> alts;
  // v >= 0, written I[.F] with v = I + f.
  std::vector<Constraint> pos;
  if (lo) pos.push_back({lo->exclusive ? Constraint::GT : Constraint::GE, lo->value, lo->fraction});
  if (hi) pos.push_back({hi->exclusive ? Constraint::LT : Constraint::LE, hi->value, hi->fraction});
  // v < 0, written -I[.F] with v = -(I + f): a bound b + 0.f is the magnitude -(b + 1) + (1 - 0.f)
  // (or -b when f is 0), the sides swap, and M > 0 (no "-0").
  auto mirrored = [](const NumberBound& b) -> std::pair<int64_t, std::string> {
    if (b.fraction.empty()) return {-b.value, ""};
    return {-b.value - 1, complement(b.fraction)};
  };
  std::vector<Constraint> neg = {{Constraint::GT, 0, ""}};
  if (hi) {
    const auto [m, f] = mirrored(*hi);
    neg.push_back({hi->exclusive ? Constraint::GT : Constraint::GE, m, f});
  }
  if (lo) {
    const auto [m, f] = mirrored(*lo);
    neg.push_back({lo->exclusive ? Constraint::LT : Constraint::LE, m, f});
  }
  // A branch no magnitude satisfies (an upper bound below zero) adds no alternative.
  magnitudes(neg, fraction_digits, sig, "\"-\"", alts);
  magnitudes(pos, fraction_digits, sig, "", alts);
  if (alts.empty()) fail("no number lies within the bounds");
  return gbnf_one_of(alts);
}

}  // namespace camelid
