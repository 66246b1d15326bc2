#pragma once
// How much slower code runs in this test build: AddressSanitizer builds (the CI's second pass)
// run the engine several times slower, more on a slow 2-core host (a Zen 3 VM ran a 10M-step
// template render in 14.7 s under ASan, against a 10 s bound). Wall-clock bounds that catch hangs
// multiply by this, so they keep catching hangs without failing on slow sanitizer runs.
namespace camelid::testing_support {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr double kSanitizerSlowdown = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr double kSanitizerSlowdown = 4;
#else
inline constexpr double kSanitizerSlowdown = 1;
#endif
#else
inline constexpr double kSanitizerSlowdown = 1;
#endif

}  // namespace camelid::testing_support
