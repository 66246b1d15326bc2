// parse_json: the limits every untrusted JSON goes through.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json.h"

using namespace camelid;

namespace {
std::string error_of(const std::string& text, JsonLimits lim = {}) {
  try {
    parse_json(text, "x.json", lim);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(CoreJson, ParsesOrdinaryJson) {
  auto j = parse_json(R"({"a":[1,2,{"b":null}],"c":"\u00e9"})", "x.json");
  EXPECT_EQ(j["a"][2]["b"], nullptr);
  EXPECT_EQ(j["c"], "\xc3\xa9");
  auto o = parse_ordered_json(R"({"z":1,"a":2})", "x.json");
  EXPECT_EQ(o.begin().key(), "z");  // insertion order kept, as Python's json does
}

TEST(CoreJson, RejectsDeepNestingWithoutRecursing) {
  EXPECT_NE(error_of(std::string(300000, '[')).find("nested deeper than 128"), std::string::npos);
  EXPECT_EQ(error_of(std::string(128, '[') + std::string(128, ']')), "");
  EXPECT_NE(error_of(std::string(5, '[') + std::string(5, ']'), {4, true}).find("deeper than 4"), std::string::npos);
}

TEST(CoreJson, RejectsDuplicateKeysAtAnyDepth) {
  EXPECT_NE(error_of(R"({"a":1,"a":2})").find("duplicate key \"a\""), std::string::npos);
  EXPECT_NE(error_of(R"({"x":{"k":1,"k":1}})").find("duplicate key"), std::string::npos);
  EXPECT_EQ(error_of(R"({"x":{"k":1},"y":{"k":1}})"), "");  // same key in two objects is fine
  EXPECT_EQ(error_of(R"({"a":1,"a":2})", {128, false}), "");
}

TEST(CoreJson, ErrorsArePlainTextWithoutRawBytes) {
  const std::string e = error_of("{\"a\":\"\xff\xfe\"}");
  EXPECT_NE(e.find("x.json: invalid JSON at byte"), std::string::npos) << e;
  for (unsigned char c : e) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << e;
  EXPECT_NE(error_of("{\"a\":1} trailing").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of("").find("invalid JSON"), std::string::npos);
  EXPECT_EQ(error_of("[1e400]"), "x.json: invalid JSON at byte 6: number overflow parsing '1e400'");
}

TEST(CoreJson, DumpNeverThrowsOnInvalidUtf8) {
  nlohmann::json j = {{"path", std::string("/\xff")}};
  EXPECT_EQ(dump_json(j), "{\"path\":\"/\xef\xbf\xbd\"}");
}
