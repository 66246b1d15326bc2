#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "core/error.h"

namespace camelid::cli {

namespace {
// Each command with the source file that registered it: --help lists them in file order, which
// static initialisation does not give (it follows the link order, and unity builds change that).
std::vector<std::pair<std::string, SetupFn>>& registered() {
  static std::vector<std::pair<std::string, SetupFn>> cmds;
  return cmds;
}
}  // namespace

std::vector<SetupFn> commands() {
  auto cmds = registered();
  std::stable_sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<SetupFn> fns;
  for (auto& c : cmds) fns.push_back(std::move(c.second));
  return fns;
}

bool add_command(SetupFn fn, const char* file) {
  registered().emplace_back(file, std::move(fn));
  return true;
}

std::vector<int> parse_ids(const std::string& csv) {
  std::vector<int> ids;
  size_t i = 0;
  while (i < csv.size()) {
    size_t j = csv.find(',', i);
    if (j == std::string::npos) j = csv.size();
    std::string tok = csv.substr(i, j - i);
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (tok.empty() || used != tok.size() || v < 0 || v > 0x7fffffff)
      fail("--ids: '", tok, "' is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(int(v));
    i = j + 1;
  }
  if (ids.empty()) fail("--ids: no token ids given");
  return ids;
}

void set_threads(int n) {
  if (n < 0) fail("--threads: must be >= 0, got ", n);
  if (n > 0) omp_set_num_threads(n);
}

}  // namespace camelid::cli

int main(int argc, char** argv) {
  CLI::App app{"camelid: run Llama-family models on your own machine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "camelid 0.1.0");
  // --help lists every option's default (subcommands inherit this when they are created).
  app.option_defaults()->always_capture_default();
  for (auto& setup : camelid::cli::commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A mistake on the command line: one line, status 1, like every other error.
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n' || c == '\r') c = ' ';
    while (!msg.empty() && msg.back() == ' ') msg.pop_back();
    std::fprintf(stderr, "error: %s (see --help)\n", msg.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
