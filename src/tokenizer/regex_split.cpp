#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex_split.h"

#include <pcre2.h>

#include <new>

#include "core/error.h"

namespace camelid {
namespace {

// Patterns come from tokenizer files and subjects from strangers. The Llama patterns match in
// linear time, but a hostile pattern could backtrack catastrophically: each match attempt is
// bounded (steps, backtracking depth, heap), and a failure is an Error, not a hang.
constexpr uint32_t kMatchLimit = 50'000'000;  // the Llama 3 pattern needs ~1 per byte
constexpr uint32_t kDepthLimit = 1'000'000;
constexpr uint32_t kHeapLimitKiB = 64 * 1024;  // per match, only for the interpreter
constexpr size_t kMaxPatternBytes = 64 * 1024;  // real ones are ~100 bytes

std::string pcre2_message(int rc) {
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(rc, msg, sizeof msg);
  return reinterpret_cast<char*>(msg);
}

}  // namespace

struct RegexSplit::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_context* ctx = nullptr;
  ~Impl() {
    pcre2_match_context_free(ctx);
    pcre2_code_free(code);
  }
};

RegexSplit::RegexSplit(const std::string& pattern, const std::string& source) : impl_(std::make_unique<Impl>()) {
  if (pattern.size() > kMaxPatternBytes)
    fail(source, ": pre-tokenizer regex is ", pattern.size(), " bytes long (at most ", kMaxPatternBytes, ")");
  int err = 0;
  PCRE2_SIZE at = 0;
  // No PCRE2_NO_UTF_CHECK here: the pattern comes from the file and may be invalid UTF-8.
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                              &err, &at, nullptr);
  if (!impl_->code) fail(source, ": pre-tokenizer regex does not compile at offset ", at, ": ", pcre2_message(err));
  // Back-references make matching exponential in general; no tokenizer pattern uses them.
  uint32_t backrefs = 0;
  pcre2_pattern_info(impl_->code, PCRE2_INFO_BACKREFMAX, &backrefs);
  if (backrefs > 0) fail(source, ": pre-tokenizer regex uses back-references, which are not supported");
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  impl_->ctx = pcre2_match_context_create(nullptr);
  if (!impl_->ctx) throw std::bad_alloc();
  pcre2_set_match_limit(impl_->ctx, kMatchLimit);
  pcre2_set_depth_limit(impl_->ctx, kDepthLimit);
  pcre2_set_heap_limit(impl_->ctx, kHeapLimitKiB);
}

RegexSplit::~RegexSplit() = default;
RegexSplit::RegexSplit(RegexSplit&&) noexcept = default;
RegexSplit& RegexSplit::operator=(RegexSplit&&) noexcept = default;

void RegexSplit::split(std::string_view text, std::vector<std::string_view>& out) const {
  // Match data is per call so one tokenizer can encode from many threads at once.
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (!md) throw std::bad_alloc();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, last = 0;
  while (pos < text.size()) {
    // The text was sanitized to valid UTF-8 by the caller: skip PCRE2's own check.
    int rc = pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, impl_->ctx);
    // The JIT's stack is small and fixed; the interpreter keeps its backtracking on the heap
    // (bounded by the heap limit), so a match that outgrows the JIT stack is retried there.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, impl_->ctx);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      pcre2_match_data_free(md);
      fail("pre-tokenizer regex failed at byte ", pos, " of the text: ", pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (b < pos || e < b || e > text.size()) {  // \K tricks; the pieces must tile the text
      pcre2_match_data_free(md);
      fail("pre-tokenizer regex gave a match that does not follow the text");
    }
    if (b > last) out.push_back(text.substr(last, b - last));
    if (e > b) {
      out.push_back(text.substr(b, e - b));
      pos = last = e;
    } else {
      // Empty match: step one character so the loop always advances.
      pos = b + 1;
      while (pos < text.size() && (uint8_t(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
  if (last < text.size()) out.push_back(text.substr(last));
  pcre2_match_data_free(md);
}

}  // namespace camelid
