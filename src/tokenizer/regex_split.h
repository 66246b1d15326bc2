#pragma once
// A pre-tokenizer "Split" with behavior Isolated: the regex's matches and the text between
// them become separate pieces. PCRE2 with UTF-8, Unicode properties and the JIT compiler.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace camelid {

class RegexSplit {
 public:
  RegexSplit(const std::string& pattern, const std::string& source);  // throws Error on a bad pattern
  ~RegexSplit();
  RegexSplit(RegexSplit&&) noexcept;
  RegexSplit& operator=(RegexSplit&&) noexcept;

  // Appends the pieces of `text` (valid UTF-8) to `out`, in order; together they cover it.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace camelid
