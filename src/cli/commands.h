#pragma once
// Each subcommand lives in its own cmd_*.cpp and registers itself at static-init time:
//   static const bool registered = camelid::cli::add_command(setup_fn);
// setup_fn adds a CLI11 subcommand to the app and sets its callback. Callbacks throw
// camelid::Error for user mistakes; main prints it as one line and exits with status 1.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace camelid::cli {

using SetupFn = std::function<void(CLI::App& app)>;
// `file` (the caller's, by default) orders the commands in --help.
bool add_command(SetupFn fn, const char* file = __builtin_FILE());
std::vector<SetupFn> commands();  // in the order of their files' names

// Shared option helpers.
std::vector<int> parse_ids(const std::string& csv);  // "1,2,3" -> {1,2,3}; throws Error
void set_threads(int n);                             // 0 = leave OpenMP's default

}  // namespace camelid::cli
