#pragma once
// Stop strings over streamed text: text is released only once it cannot be the start of a stop
// string, so a client never receives part of one.
#include <string>
#include <vector>

namespace camelid {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);

  // Adds newly decoded text; returns the text safe to emit now. After a stop string is seen,
  // stopped() is true and nothing more is emitted.
  std::string push(const std::string& text);
  // Releases what was held back (at the end of generation).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace camelid
