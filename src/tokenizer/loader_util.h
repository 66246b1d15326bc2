#pragma once
// Helpers shared by the tokenizer file loaders, which read files from strangers: size-capped
// reads, typed JSON field access whose errors name the file and the field, and quoting of file
// text for those messages (short, printable, one line).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace camelid::tok {

using json = nlohmann::json;

// Limits on what a tokenizer file may hold. The largest real vocabularies have ~260k entries and
// tokenizer.json files ~35 MB; these leave wide room while keeping memory bounded (a vocabulary
// entry costs a few hundred bytes once indexed).
inline constexpr int64_t kMaxVocab = 1 << 22;                 // token ids: 0 .. kMaxVocab-1
inline constexpr uint64_t kMaxTokenizerFile = 128ull << 20;   // tokenizer.json / tokenizer.model
inline constexpr uint64_t kMaxConfigFile = 64ull << 20;       // tokenizer_config.json
inline constexpr size_t kMaxAddedTokenBytes = 1024;           // matching cost per text byte
inline constexpr int kMaxPipelineDepth = 16;                  // nested Sequence normalizers etc.

// The GPT-2 pre-tokenizer regex that ByteLevel(use_regex=true) applies.
inline constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Llama 3's pre-tokenizer regex, as its tokenizer.json has it (PCRE2 takes the (?i:...) group
// that llama.cpp had to spell out case by case); GGUF calls it tokenizer.ggml.pre "llama-bpe".
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The whole file, or Error naming it when missing or larger than max_bytes.
std::string read_file_capped(const std::string& path, uint64_t max_bytes);

// SentencePiece's visible space "▁" (U+2581): how its pieces spell ' '.
inline const std::string kSpace = "\xE2\x96\x81";

// `s` with every occurrence of `from` (not empty) replaced by `to`.
std::string replace_all(std::string s, const std::string& from, const std::string& to);

// 'text' for an error message: at most 48 bytes, bytes outside printable ASCII as \xNN.
std::string quote(std::string_view text);

// "number", "string", ... for "must be X, not Y" messages.
const char* type_name(const json& j);

// Typed reads. `file` and `field` (e.g. "added_tokens[3].id") name the place in messages.
// A missing key and null are "absent": the *_or variants return the default then.
std::string field_of(const std::string& field, const char* key);  // "field.key" (or "key" at the top)
const json* member(const json& obj, const char* key);            // nullptr when absent or null
int64_t get_int(const std::string& file, const std::string& field, const json& j, int64_t lo, int64_t hi);
std::string get_string(const std::string& file, const std::string& field, const json& j);
bool get_bool(const std::string& file, const std::string& field, const json& j);
bool bool_or(const std::string& file, const std::string& field, const json& obj, const char* key, bool dflt);
std::string string_or(const std::string& file, const std::string& field, const json& obj, const char* key,
                      const std::string& dflt);
const json& need(const std::string& file, const std::string& field, const json& obj, const char* key);  // present, not null
const json& need_array(const std::string& file, const std::string& field, const json& j);
const json& need_object(const std::string& file, const std::string& field, const json& j);

}  // namespace camelid::tok
