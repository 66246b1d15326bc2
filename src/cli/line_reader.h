#pragma once
// Reads what the user types in `chat`. On a terminal: libedit (line editing, history kept in
// $XDG_STATE_HOME/camelid/history or ~/.camelid_history). Otherwise: plain lines from stdin, so
// piped input behaves as it always has. Messages may span lines: a line ending in `\` goes on
// on the next line, and `"""` opens a block that the next line ending in `"""` closes.
#include <string>

namespace camelid::cli {

class LineReader {
 public:
  enum class Status { Line, Eof, Interrupted };  // Interrupted: Ctrl-C while waiting for input

  // interactive: stdin is a terminal (libedit is used when the build has it).
  explicit LineReader(bool interactive, bool colour);
  ~LineReader();  // saves the history
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // One physical line (without its newline).
  Status read_line(const std::string& prompt, std::string& line);
  // One message, joining continued lines and """ blocks. Eof with a partial message returns it as
  // a Line; Interrupted drops it.
  Status read_message(std::string& text);

  static std::string history_path();  // "" when neither XDG_STATE_HOME nor HOME is set

 private:
  bool interactive_, colour_, editline_ = false;
  std::string history_, pending_;  // pending_: bytes read from a pipe past the last newline
  bool eof_ = false;
};

}  // namespace camelid::cli
