#include "runtime/json_number_ranges.h"

#include <algorithm>
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

// What an integer part I allows of the fraction f in [0, 1): a bit set.
enum Frac : int { kNone = 0, kZero = 1, kNonzero = 2, kAny = 3 };

// One bound on a non-negative magnitude M = I + f.
struct Constraint {
  enum Kind { GE, GT, LE, LT } kind;
  int64_t b;
  int allows(int64_t i) const {
    switch (kind) {
      case GE: return i >= b ? kAny : kNone;  // I < b: M < I + 1 <= b
      case GT: return i > b ? kAny : i == b ? kNonzero : kNone;
      case LE: return i < b ? kAny : i == b ? kZero : kNone;
      case LT: return i < b ? kAny : kNone;
    }
    return kNone;
  }
};

// Up to `digits` fraction digits (none for integers); a non-zero fraction ends in a non-zero digit.
std::string fraction(int kind, int digits) {
  if (digits == 0) return "";
  const std::string d = std::to_string(digits), d1 = std::to_string(digits - 1);
  if (kind == kAny) return "( \".\" [0-9]{1," + d + "} )?";
  if (kind == kZero) return "( \".\" \"0\"{1," + d + "} )?";
  return "\".\" [0-9]{0," + d1 + "} [1-9]";
}

// Texts of magnitudes I[.F] within every constraint, as alternatives.
void magnitudes(const std::vector<Constraint>& cs, int digits, const std::string& sign, std::vector<std::string>& out) {
  // The allowed fraction only changes at b and b + 1 of each constraint.
  std::vector<int64_t> cuts = {0};
  for (const Constraint& c : cs)
    for (int64_t p : {c.b, c.b + 1})
      if (p > 0 && p <= int64_t(kMaxNatural)) cuts.push_back(p);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  cuts.push_back(int64_t(kMaxNatural) + 1);
  // Segments with the same fraction rule merge, so a plain range stays one natural range.
  int64_t start = -1;
  int kind = kNone;
  auto flush = [&](int64_t end) {
    if (start < 0) return;
    if (kind != kNone) out.push_back(join(sign, join(natural_range_gbnf(uint64_t(start), uint64_t(end)), fraction(kind, digits))));
    start = -1;
  };
  for (size_t s = 0; s + 1 < cuts.size(); ++s) {
    int k = kAny;
    for (const Constraint& c : cs) k &= c.allows(cuts[s]);
    if (digits == 0) k = k & kZero ? kAny : kNone;  // an integer is its own zero fraction
    if (start >= 0 && k == kind) continue;
    flush(cuts[s] - 1);
    if (k != kNone) start = cuts[s], kind = k;
  }
  flush(cuts.back() - 1);
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

std::string number_range_gbnf(std::optional<NumberBound> lo, std::optional<NumberBound> hi, int fraction_digits) {
  if (fraction_digits < 0 || fraction_digits > 16) fail("number_range_gbnf: fraction digits ", fraction_digits, " outside 0..16");
  for (const auto& b : {lo, hi})
    if (b && (b->value > kMaxBound || b->value < -kMaxBound)) fail("numeric bounds beyond +-10^15 are not supported");
  std::vector<std::string> alts;
  // v >= 0, written I[.F] with v = I + f.
  std::vector<Constraint> pos;
  if (lo) pos.push_back({lo->exclusive ? Constraint::GT : Constraint::GE, lo->value});
  if (hi) pos.push_back({hi->exclusive ? Constraint::LT : Constraint::LE, hi->value});
  // v < 0, written -I[.F] with v = -(I + f): the bounds swap sides and M > 0 (no "-0").
  std::vector<Constraint> neg = {{Constraint::GT, 0}};
  if (hi) neg.push_back({hi->exclusive ? Constraint::GT : Constraint::GE, -hi->value});
  if (lo) neg.push_back({lo->exclusive ? Constraint::LT : Constraint::LE, -lo->value});
  // A branch no magnitude satisfies (an upper bound below zero) adds no alternative.
  magnitudes(neg, fraction_digits, "\"-\"", alts);
  magnitudes(pos, fraction_digits, "", alts);
  if (alts.empty()) fail("no number lies within the bounds");
  return gbnf_one_of(alts);
}

}  // namespace camelid
