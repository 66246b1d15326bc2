// Real chat templates (tests/data/chat_templates) against jinja2 itself, configured as
// transformers renders them (tests/chat_template_oracle.py): every template x conversation x
// add_generation_prompt must give the same text, or the same raise_exception() message, or an
// error on both sides. python3 with jinja2 is required (scripts/install-deps.sh installs it);
// without it this test fails, it does not skip.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat/chat_template.h"
#include "fixtures.h"

namespace camelid {
namespace {

using camelid::test::read_file;

using json = nlohmann::ordered_json;
const std::string kData = std::string(CAMELID_SOURCE_DIR) + "/tests/data/chat_templates";
constexpr int64_t kNow = 1722000000;  // 2024-07-26 13:20:00 UTC, for strftime_now on both sides

// Runs the oracle; an empty result (and a test failure that says why) if it cannot.
json run_oracle() {
  const std::string cmd = "python3 '" + std::string(CAMELID_SOURCE_DIR) + "/tests/chat_template_oracle.py' '" + kData +
                          "' " + std::to_string(kNow) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "cannot run python3: " << cmd;
    return json();
  }
  std::string out;
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) {
    ADD_FAILURE() << "the jinja2 oracle failed (exit status " << rc << "); python3 and python3-jinja2 are required "
                  << "(scripts/install-deps.sh installs them):\n" << out.substr(0, 2000);
    return json();
  }
  return json::parse(out);
}

TEST(ChatTemplateOracle, RealTemplatesRenderAsJinja2Does) {
  const json ref = run_oracle();
  if (ref.is_null()) return;
  const json manifest = json::parse(read_file(kData + "/manifest.json"));
  std::map<std::string, json> convs;
  const json conversations = json::parse(read_file(kData + "/conversations.json"));
  for (const json& c : conversations["conversations"]) convs[c["name"].get<std::string>()] = c;
  std::map<std::string, json> templates;
  for (const json& t : manifest["templates"]) templates[t["file"].get<std::string>()] = t;

  size_t rendered = 0, raised = 0, failed = 0;
  for (const json& c : ref["cases"]) {
    const json& t = templates.at(c["template"].get<std::string>());
    const std::string where = c["template"].get<std::string>() + " / " + c.value("conversation", "") +
                              " / add_generation_prompt=" + (c.value("add_generation_prompt", false) ? "true" : "false");
    if (c.contains("syntax_error")) {
      ADD_FAILURE() << where << ": jinja2 cannot parse it: " << c["syntax_error"];
      continue;
    }
    std::unique_ptr<ChatTemplate> tmpl;
    try {
      tmpl = std::make_unique<ChatTemplate>(read_file(kData + "/" + t["file"].get<std::string>()), t["bos"], t["eos"]);
    } catch (const Error& e) {
      ADD_FAILURE() << where << ": " << e.what();
      continue;
    }
    const json& conv = convs.at(c["conversation"].get<std::string>());
    ChatTemplateInputs in;
    in.messages = conv["messages"];
    if (conv.contains("tools")) in.tools = conv["tools"];
    in.add_generation_prompt = c["add_generation_prompt"];
    if (t.contains("vars")) in.extra = t["vars"];
    in.now = kNow;
    std::string got, error;
    bool was_raised = false;
    try {
      got = tmpl->render(in);
    } catch (const jinja::RaisedError& e) {
      error = e.what(), was_raised = true;
    } catch (const Error& e) {
      error = e.what();
    }
    if (c.contains("rendered")) {
      ++rendered;
      EXPECT_EQ(error, "") << where;
      const std::string want = c["rendered"];
      if (got != want) {
        size_t at = 0;
        while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
        const size_t from = at < 80 ? 0 : at - 80;
        ADD_FAILURE() << where << ": differs at byte " << at << "\n  jinja2:  " << json(want.substr(from, 160)).dump()
                      << "\n  camelid: " << json(got.substr(from, 160)).dump();
      }
    } else if (c.contains("raised")) {
      ++raised;
      EXPECT_TRUE(was_raised) << where << ": expected raise_exception(" << c["raised"] << "), got " << (error.empty() ? got : error);
      EXPECT_EQ(error, c["raised"].get<std::string>()) << where;
    } else {
      ++failed;
      EXPECT_FALSE(error.empty() || was_raised) << where << ": jinja2 fails (" << c["failed"] << "), camelid gave "
                                                 << (error.empty() ? "text: " + got : "raise_exception: " + error);
    }
  }
  EXPECT_GT(rendered, 100u);
  EXPECT_GT(raised, 5u);
  std::printf("%zu renders, %zu raise_exception, %zu errors compared\n", rendered, raised, failed);
}

}  // namespace
}  // namespace camelid
