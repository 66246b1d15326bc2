#pragma once
// Whether this test build runs under AddressSanitizer, and how much slower code runs there: ASan
// builds (the CI's second pass) run the engine several times slower, more on a slow 2-core host (a
// Zen 3 VM ran a 10M-step template render in 14.7 s under ASan, against a 10 s bound). Wall-clock
// bounds that catch hangs multiply by kSanitizerSlowdown, so they keep catching hangs without
// failing on slow sanitizer runs. (GCC says __SANITIZE_ADDRESS__, clang __has_feature.)
namespace camelid::testing_support {

#if defined(__SANITIZE_ADDRESS__)
#define CAMELID_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAMELID_TEST_ASAN 1
#endif
#endif

#ifdef CAMELID_TEST_ASAN
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
inline constexpr double kSanitizerSlowdown = kAddressSanitizer ? 4 : 1;

}  // namespace camelid::testing_support
