#pragma once
// Helpers shared by the model subcommands.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "model/llama.h"

namespace camelid::cli {

std::unique_ptr<Llama> load_llama(const std::string& path, bool no_mmap = false);
// Adds --no-mmap to a subcommand.
void add_no_mmap_flag(CLI::App* sub, bool& flag);

// Token ids from a file: a JSON array, or integers separated by commas/whitespace.
std::vector<int> read_ids_file(const std::string& path);

// Prints a float the way JSON consumers want it: shortest text that reads back the same f32.
std::string json_float(double v);

}  // namespace camelid::cli
