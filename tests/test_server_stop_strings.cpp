#include <gtest/gtest.h>

#include "server/stop_strings.h"

using camelid::StopStringFilter;

TEST(StopStrings, HoldsBackPossiblePrefixes) {
  StopStringFilter f({"</end>", "STOP"});
  EXPECT_EQ(f.push("hello <"), "hello ");
  EXPECT_EQ(f.push("/e"), "");
  EXPECT_EQ(f.push("x"), "</ex");
  EXPECT_EQ(f.push(" ST"), " ");
  EXPECT_EQ(f.push("OP and more"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("ignored"), "");
  EXPECT_EQ(f.flush(), "");
}

TEST(StopStrings, StopInsideOneChunkAndFlush) {
  StopStringFilter f({"\n\n"});
  EXPECT_EQ(f.push("a\nb"), "a\nb");
  EXPECT_EQ(f.push("c\n"), "c");
  EXPECT_EQ(f.flush(), "\n");
  StopStringFilter g({"ab"});
  EXPECT_EQ(g.push("xxabyy"), "xx");
  EXPECT_TRUE(g.stopped());
}

TEST(StopStrings, NoStopsPassesEverything) {
  StopStringFilter f({"", ""});
  EXPECT_EQ(f.push("abc"), "abc");
  EXPECT_FALSE(f.stopped());
}
