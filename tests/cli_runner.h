#pragma once
// Runs the built `camelid` command in a shell and captures what it prints.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"

namespace camelid::test {

struct CmdResult {
  int status = -1;
  std::string out;  // stdout (stderr too when merged)
};

inline CmdResult run_camelid(const std::string& args, bool merge_stderr = false) {
  std::string cmd = "'" + camelid_binary() + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  CmdResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Single-quoted for the shell.
inline std::string q(const std::string& s) { return "'" + s + "'"; }

// The tiny Llama 2 fixture's directory, and the same quoted for a command line.
inline const std::string kLlama2Dir = fixture("models/tiny-llama2");
inline const std::string kLlama2Arg = q(kLlama2Dir);

// What `camelid <args>` printed, parsed as JSON; a test failure (and an empty object) if it failed.
inline nlohmann::json run_json(const std::string& args) {
  auto r = run_camelid(args);
  EXPECT_EQ(r.status, 0) << args;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

// Writes `content` to a file in the test process's scratch directory.
inline std::string write_temp(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::path(scratch_dir()) / name;
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

}  // namespace camelid::test
