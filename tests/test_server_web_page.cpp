// GET / serves the chat page built into the binary; the browser test (tests/web/) drives it.
#include <gtest/gtest.h>
#include <httplib.h>

#include "fixtures.h"
#include "server_process.h"
#include "server/web_page.h"

using namespace camelid::test;

namespace {

TEST(ServerWebPage, ServedAtRootAsHtmlWithoutTheApiKey) {
  // The page holds no data, so it loads without the key; what it asks for needs the key.
  ServerProcess s("-m '" + fixture("models/tiny-llama2") + "' --parallel 1 --ctx 64 --api-key sekret --threads 1");
  httplib::Client c("127.0.0.1", s.port());
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page->body, std::string(camelid::chat_page_html()));
  auto head = c.Head("/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(c.Post("/", "{}", "application/json")->status, 405);
  EXPECT_EQ(c.Get("/v1/models")->status, 401);
}

TEST(ServerWebPage, SelfContained) {
  // Works offline: no script, style or font from anywhere but the page itself.
  const std::string page(camelid::chat_page_html());
  ASSERT_GT(page.size(), 1000u);
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0u);
  for (const char* remote : {"src=\"http", "href=\"http", "@import", "url(http", "cdn"})
    EXPECT_EQ(page.find(remote), std::string::npos) << remote;
  EXPECT_NE(page.find("/v1/chat/completions"), std::string::npos);
}

}  // namespace
