#pragma once
// `NAME VALUE` integer options of the plain (non-Google-Benchmark) bench programs, whose first
// argument is the model.
#include <cstdlib>
#include <cstring>

inline int int_arg(int argc, char** argv, const char* name, int def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], name)) return std::atoi(argv[i + 1]);
  return def;
}
