# cmake -DIN=file -DOUT=file.cpp -DNAME=fn -P embed_file.cmake
# Writes a C++ source defining `std::string_view camelid::NAME()` holding IN's bytes, so files
# such as the chat page ship inside the binary (hex bytes: any content is safe to embed).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/embed_file.cmake; do not edit.\n"
  "#include <string_view>\nnamespace camelid {\nnamespace { const char kData[] = {\n${bytes}0};\n}\n"
  "std::string_view ${NAME}() { return {kData, sizeof kData - 1}; }\n}  // namespace camelid\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
