#pragma once
// JSON Schema's numeric bounds (minimum, maximum, exclusiveMinimum, exclusiveMaximum) as GBNF:
// the decimal texts of the numbers inside the bounds, digit by digit (no leading zeros, no "-0",
// no exponent, at most 16 integer digits as json-int allows), so the grammar itself enforces the
// bounds instead of checking the value after the fact.
#include <cstdint>
#include <optional>
#include <string>

namespace camelid {

// The bound value + 0.fraction: `value` is the floor (-2.5 is {-3, .., "5"}), `fraction` its
// decimal digits without trailing zeros ("" for a whole number).
struct NumberBound {
  int64_t value;
  bool exclusive = false;
  std::string fraction = "";
};

// A bound written as decimal text (JSON: "-2.5", "1e-3", "12"), exactly.
NumberBound parse_number_bound(const std::string& text, bool exclusive);

// Numbers in the bounds (either may be absent) with at most `fraction_digits` (0..16) digits
// after the point: 0 gives integers. Bounds must be within +-10^15. Throws Error when no number
// is inside them. Beside an exclusive bound a number has at most 15 significant digits, so its
// text and the bound stay different doubles where a validator reads them as such.
std::string number_range_gbnf(std::optional<NumberBound> lo, std::optional<NumberBound> hi, int fraction_digits);

// Naturals in [a, b] (b < 10^16), as decimal text without leading zeros.
std::string natural_range_gbnf(uint64_t a, uint64_t b);

}  // namespace camelid
