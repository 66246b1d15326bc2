#pragma once
// Size arithmetic on numbers that come from files (shapes, offsets, header fields): 64-bit and
// never wrapping. A CheckedSize remembers that some step overflowed (or that a negative number
// went in), so a whole formula can be written plainly and checked once at the end:
//   CheckedSize need = CheckedSize(v) * d + CheckedSize(l) * d * q;
//   if (need.overflowed() || need.value() > file_size) fail(...);
#include <cstdint>
#include <type_traits>

namespace camelid {

class CheckedSize {
 public:
  constexpr CheckedSize() = default;
  template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
  constexpr CheckedSize(T v) : v_(uint64_t(v)), bad_(std::is_signed_v<T> && v < 0) {}  // NOLINT: implicit on purpose

  friend constexpr CheckedSize operator*(CheckedSize a, CheckedSize b) {
    CheckedSize r;
    r.bad_ = a.bad_ || b.bad_ || __builtin_mul_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend constexpr CheckedSize operator+(CheckedSize a, CheckedSize b) {
    CheckedSize r;
    r.bad_ = a.bad_ || b.bad_ || __builtin_add_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  CheckedSize& operator*=(CheckedSize b) { return *this = *this * b; }
  CheckedSize& operator+=(CheckedSize b) { return *this = *this + b; }

  constexpr bool overflowed() const { return bad_; }
  // Meaningful only when !overflowed().
  constexpr uint64_t value() const { return v_; }
  // True when the result is valid and at most `limit`.
  constexpr bool fits(uint64_t limit) const { return !bad_ && v_ <= limit; }

 private:
  uint64_t v_ = 0;
  bool bad_ = false;
};

}  // namespace camelid
