// Hostile chat templates (issue 9): each one must end quickly with a clear TemplateError (or
// LimitError), never crash, hang or eat gigabytes; and real templates stay far inside the limits.
#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>

#include "chat/chat_template.h"
#include "chat/jinja.h"
#include "fixtures.h"
#include "sanitizer_slowdown.h"

namespace camelid::jinja {
namespace {

using camelid::test::read_file;
using camelid::test::repeat;

// A hostile render must end well within this, even under ASan (about 1 s in Release).
constexpr double kQuickSeconds = 10 * testing_support::kSanitizerSlowdown;

struct Outcome {
  std::string text;   // the output, or the error message
  bool error = false;
  bool limit = false;  // a LimitError
  double seconds = 0;
};

Outcome run(const std::string& src, const std::string& vars_json = "{}", const Limits& lim = {}) {
  Outcome o;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const Dict vars = Value::from_json(nlohmann::ordered_json::parse(vars_json)).dict();
    o.text = Template(src).render(vars, lim);
  } catch (const LimitError& e) {
    o.text = e.what(), o.error = o.limit = true;
  } catch (const TemplateError& e) {
    o.text = e.what(), o.error = true;
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

// The template fails with a message containing `want`, quickly.
void expect_error(const std::string& src, const std::string& want, bool limit = true, const std::string& vars = "{}") {
  const Outcome o = run(src, vars);
  const std::string shown = src.size() > 120 ? src.substr(0, 120) + "..." : src;
  EXPECT_TRUE(o.error) << shown << " rendered " << o.text.substr(0, 200);
  EXPECT_NE(o.text.find(want), std::string::npos) << shown << "\n  error: " << o.text.substr(0, 200);
  if (limit) {
    EXPECT_TRUE(o.limit) << shown << ": not a LimitError: " << o.text.substr(0, 200);
  }
  EXPECT_LT(o.seconds, kQuickSeconds) << shown;
  if (o.seconds > 0.25) std::printf("%.2f s: %.80s -> %.80s\n", o.seconds, shown.c_str(), o.text.c_str());
}

std::string render_ok(const std::string& src, const std::string& vars = "{}") {
  const Outcome o = run(src, vars);
  EXPECT_FALSE(o.error) << src.substr(0, 200) << ": " << o.text;
  return o.text;
}

// ---- recursion ----

TEST(JinjaSandbox, InfiniteMacroRecursion) {
  expect_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion deeper than 1000 levels");
  expect_error("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(100000) }}",
               "recursion deeper than 1000 levels");
  // Mutual recursion, and recursion through a filter argument.
  expect_error("{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() | trim }}{% endmacro %}{{ a() }}", "recursion deeper");
  // Legitimate recursion (a JSON schema walk) is fine.
  EXPECT_EQ(render_ok("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(50) | length }}"), "91");
  // The line of the failing node is named.
  expect_error("\n\n{% macro f() %}\n{{ f() }}{% endmacro %}{{ f() }}", "(line 4)");
}

TEST(JinjaSandbox, DeepParsingIsASyntaxError) {
  const std::string too_deep = "nested deeper than 200 levels";
  expect_error("{{ " + repeat("(", 100000) + "1" + repeat(")", 100000) + " }}", too_deep);
  expect_error(repeat("{% if true %}", 10000) + repeat("{% endif %}", 10000), too_deep);
  expect_error(repeat("{% for x in [1] %}", 10000) + repeat("{% endfor %}", 10000), too_deep);
  expect_error("{{ 'a'" + repeat(" | trim", 100000) + " }}", too_deep);
  expect_error("{{ 1" + repeat(" + 1", 100000) + " }}", too_deep);
  expect_error("{{ " + repeat("not ", 100000) + "1 }}", too_deep);
  expect_error("{{ " + repeat("-", 100000) + "1 }}", too_deep);
  expect_error("{{ x" + repeat(".a", 100000) + " }}", too_deep);
  expect_error("{{ x" + repeat("[0]", 100000) + " }}", too_deep);
  expect_error("{{ x" + repeat("()", 100000) + " }}", too_deep);
  expect_error("{{ " + repeat("[", 100000) + repeat("]", 100000) + " }}", too_deep);
  expect_error("{{ " + repeat("{'a': ", 100000) + "1" + repeat("}", 100000) + " }}", too_deep);
  expect_error("{{ " + repeat("1 if x else ", 10000) + "1 }}", too_deep);
  expect_error("{{ " + repeat("f(", 100000) + repeat(")", 100000) + " }}", too_deep);
  // 100,000 nested blocks, or a 10^6-term sum, are over the source limit before they are parsed.
  expect_error(repeat("{% if true %}", 100000) + repeat("{% endif %}", 100000), "template source is longer than 1 MiB");
  expect_error(repeat("{% for x in [1] %}", 100000) + repeat("{% endfor %}", 100000), "template source is longer than 1 MiB");
  expect_error("{{ 1" + repeat("+1", 1000000) + " }}", "template source is longer than 1 MiB");
  // Nesting real templates use (and a bit more) is fine.
  EXPECT_EQ(render_ok("{{ " + repeat("(", 50) + "1" + repeat(")", 50) + " }}" + repeat("{% if true %}", 50) + "y" + repeat("{% endif %}", 50)),
            "1y");
  EXPECT_EQ(render_ok("{{ 1" + repeat(" + 1", 150) + " }}"), "151");
}

TEST(JinjaSandbox, ValuesCannotContainThemselves) {
  expect_error("{% set l = [] %}{{ l.append(l) }}{{ l }}", "cannot put a list inside itself", false);
  expect_error("{% set l = [] %}{{ l.append(l) }}{{ l == l }}", "cannot put a list inside itself", false);
  expect_error("{% set l = [] %}{{ l.append([1, [l]]) }}{{ l | tojson }}", "cannot put a list inside itself", false);
  expect_error("{% set a = [] %}{% set b = [a] %}{{ a.append(b) }}", "cannot put a list inside itself", false);
  expect_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "cannot put a dict inside itself", false);
  expect_error("{% set ns = namespace(l=[]) %}{{ ns.l.append(ns) }}{% set ns.x = ns.l %}", "inside itself", false);
  expect_error("{% set d = {} %}{% set l = [d] %}{{ d.update({'x': l}) }}{{ d }}", "cannot put a dict inside itself", false);
  // Sharing without a cycle is fine.
  EXPECT_EQ(render_ok("{% set a = [1] %}{% set b = [a, a] %}{{ b.append(a) }}{{ b }}"), "None[[1], [1], [1]]");
}

TEST(JinjaSandbox, DeeplyNestedValues) {
  // Built and destroyed without recursion: fine.
  EXPECT_EQ(render_ok("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}ok"), "ok");
  const std::string deep = "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}{% set ns.l = [ns.l] %}{% endfor %}";
  expect_error(deep + "{{ ns.l }}", "recursion deeper than 1000 levels");
  expect_error(deep + "{{ ns.l == ns.l }}", "recursion deeper than 1000 levels");
  expect_error(deep + "{{ ns.l < ns.l }}", "recursion deeper than 1000 levels");
  expect_error(deep + "{{ ns.l | tojson }}", "recursion deeper than 1000 levels");
  expect_error(deep + "{{ [ns.l] | unique | list }}{{ ns.l in [ns.l] }}", "recursion deeper than 1000 levels");
  // map(filter) by name, one level per argument.
  expect_error(deep + "{{ ns.l | map(" + repeat("'map', ", 2000) + "'string') | list }}", "recursion deeper than 1000 levels");
  // Exponential sharing: 2^60 leaves reached through 60 levels.
  const std::string dag = "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}";
  expect_error(dag + "{{ ns.l == ns.l }}", "render took more than");
  expect_error(dag + "{{ ns.l }}", "render took more than");
  expect_error(dag + "{{ ns.l | tojson }}", "render took more than");
  expect_error(dag + "{{ ns.l | string | length }}", "render took more than");
}

// ---- integers ----

TEST(JinjaSandbox, CheckedIntegerArithmetic) {
  EXPECT_EQ(render_ok("{{ (-9223372036854775807 - 1) % -1 }} {{ 7 % -1 }} {{ -7 % 3 }} {{ 7 // -2 }}"), "0 0 2 -4");
  EXPECT_EQ(render_ok("{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 9223372036854775807 }} {{ 2 ** -1 }}"),
            "4611686018427387904 -9223372036854775808 9223372036854775807 0.5");
  EXPECT_EQ(render_ok("{{ 9007199254740993 // 1 }} {{ 9007199254740993 == 9007199254740992 }}"), "9007199254740993 False");
  expect_error("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow: -9223372036854775808 // -1 does not fit in 64 bits");
  expect_error("{{ 2 ** 64 }}", "integer overflow: 2 ** 64 does not fit in 64 bits");
  expect_error("{{ 2 ** 63 }}", "integer overflow");
  expect_error("{{ 10 ** 1000000000000 }}", "integer overflow");
  expect_error("{{ 9223372036854775807 + 1 }}", "integer overflow: 9223372036854775807 + 1");
  expect_error("{{ -9223372036854775807 - 2 }}", "integer overflow: -9223372036854775807 - 2");
  expect_error("{{ 4611686018427387904 * 2 }}", "integer overflow: 4611686018427387904 * 2");
  expect_error("{{ -(-9223372036854775807 - 1) }}", "integer overflow: -(-9223372036854775808)");
  expect_error("{{ (-9223372036854775807 - 1) | abs }}", "integer overflow: abs(-9223372036854775808)");
  expect_error("{{ [9223372036854775807, 1] | sum }}", "integer overflow");
  expect_error("{{ '99999999999999999999' | int }}", "integer overflow: 99999999999999999999 does not fit in 64 bits");
  expect_error("{{ 1e30 | int }}", "cannot convert float 1e+30 to an integer");
  expect_error("{{ '1e30' | int }}", "cannot convert float 1e+30 to an integer");
  expect_error("{{ 99999999999999999999 }}", "integer literal 99999999999999999999 does not fit in 64 bits", false);
  expect_error("{{ range(1e300) }}", "cannot convert float 1e+300 to an integer");
  EXPECT_EQ(render_ok("{{ '42' | int }} {{ ' -7 ' | int }} {{ '4.9' | int }} {{ 'x' | int }} {{ 'nan' | int(5) }} {{ 3.9 | int }}"), "42 -7 4 0 5 3");
  for (const char* src : {"{{ 1 // 0 }}", "{{ 1 % 0 }}", "{{ 1 / 0 }}", "{{ 1.5 // 0.0 }}", "{{ 1 % 0.0 }}"})
    expect_error(src, "division by zero", false);
  EXPECT_EQ(render_ok("{{ 9 is divisibleby(-1) }} {{ (-9223372036854775807 - 1) is divisibleby(-1) }} {{ -3 is odd }}"), "True True True");
}

// ---- time ----

TEST(JinjaSandbox, StepBudgetEndsLongRenders) {
  expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "render took more than 10000000 steps");
  expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}", "render took more than");
  // Work inside builtins counts too: comparing or searching a 10 MB string again and again.
  expect_error("{% set s = 'a' * 10000000 %}{% for i in range(100000) %}{% if s == s %}{% endif %}{% endfor %}", "render took more than");
  expect_error("{% set s = 'a' * 10000000 %}{% for i in range(100000) %}{% if 'b' in s %}{% endif %}{% endfor %}", "render took more than");
  expect_error("{% set s = 'é' * 1000000 %}{% for i in range(100000) %}{{ s[-1] }}{% endfor %}", "render took more than");
  expect_error("{% set l = range(100000) | list %}{% for i in range(100000) %}{{ (l | list)[0] }}{{ l[1:] | length }}{% endfor %}",
               "render took more than");
  // Loop control costs no stack unwinding; long names and keys (from the source) are work too.
  expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% if true %}{% continue %}{% endif %}{% endfor %}{% endfor %}",
               "render took more than");
  const std::string name = "v" + repeat("x", 500000);
  expect_error("{% set " + name + " = 1 %}{% for i in range(100000) %}{% for j in range(100000) %}{{ " + name + " }}{% endfor %}{% endfor %}",
               "render took more than");
  expect_error("{% set d = {} %}{% for i in range(1000) %}{{ d.update({('k' * 100000) ~ i: i}) }}{% endfor %}"
               "{% for i in range(100000) %}{{ d['k' * 100000 ~ '999'] }}{% endfor %}",
               "render took more than");
  expect_error("{% set ns = namespace(f=[]) %}{% for i in range(100000) %}{{ ns.f.append(i / 7) }}{% endfor %}"
               "{% for i in range(100000) %}{% set x = ns.f | string %}{% endfor %}",
               "render took more than");
  // Substring search is linear whatever the texts ('aaa...a' searched for 'aaa...ab').
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(render_ok("{% set h = 'a' * 1000000 %}{% set n = 'a' * 500000 ~ 'b' %}{{ n in h }} {{ h.find(n) }} {{ h.count(n) }} "
                      "{{ h.split(n) | length }} {{ h.replace(n, 'x') | length }} {{ h.strip(n) | length }}"),
            "False -1 0 1 1000000 0");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), kQuickSeconds);
  expect_error("{% set h = 'a' * 1000000 %}{% set n = 'a' * 500000 ~ 'b' %}{% for i in range(100000) %}{{ n in h }}{% endfor %}",
               "render took more than");
  // A smaller budget ends sooner, with its own number.
  Limits small;
  small.max_steps = 1000;
  const Outcome o = run("{% for i in range(100000) %}{{ i }}{% endfor %}", "{}", small);
  EXPECT_NE(o.text.find("render took more than 1000 steps"), std::string::npos) << o.text;
}

TEST(JinjaSandbox, RangeIsLimited) {
  expect_error("{{ range(-9223372036854775807 - 1, 9223372036854775807) | length }}", "range() of more than 100000 items");
  expect_error("{{ range(100001) | length }}", "range() of more than 100000 items");
  expect_error("{{ range(9223372036854775807, -9223372036854775807 - 1, -1) | length }}", "range() of more than 100000 items");
  EXPECT_EQ(render_ok("{{ range(100000) | length }} {{ range(9223372036854775806, 9223372036854775807, 9223372036854775807) }} "
                      "{{ range(10, 0, -4) }} {{ range(5, 1) }}"),
            "100000 [9223372036854775806] [10, 6, 2] []");
  // Slices never step past the ends, whatever the step.
  EXPECT_EQ(render_ok("{{ [1, 2, 3][1::9223372036854775807] }} {{ 'abc'[::-9223372036854775807 - 1] }} {{ 'héllo'[::-2] }} {{ 'héllo'[1:3] }}"),
            "[2] c olh él");
}

// ---- memory ----

TEST(JinjaSandbox, StringsAndListsAreBounded) {
  expect_error("{{ 'a' * 10**12 }}", "string longer than 64 MiB");
  expect_error("{{ 10**12 * 'ab' }}", "string longer than 64 MiB");
  expect_error("{{ [1, 2] * 10**12 }}", "of memory");
  expect_error("{% set ns = namespace(s='a') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "string longer than 64 MiB");
  expect_error("{% set ns = namespace(s='a') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "string longer than 64 MiB");
  expect_error("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "of memory");
  expect_error("{{ [1] | tojson(indent=10**9) }}", "string longer than 64 MiB");
  expect_error("{{ {'a': [[1]]} | tojson(indent=9223372036854775807) }}", "string longer than 64 MiB");
  expect_error("{{ 'a\nb' | indent(10**12) }}", "string longer than 64 MiB");
  expect_error("{% set s = 'a' * 1000000 %}{{ s.replace('a', s) }}", "string longer than 64 MiB");
  expect_error("{% set s = 'a' * 1000000 %}{{ s | replace('a', 'bcd' * 100) }}", "string longer than 64 MiB");
  expect_error("{% set s = 'ab' * 10000000 %}{{ s | list | length }}", "of memory");
  expect_error("{% set s = 'a' * 60000000 %}{{ [s, s] | join }}", "string longer than 64 MiB");
  // Output: the rendered text, and what a macro or {% set %} block captures.
  expect_error("{% for i in range(100000) %}{{ 'a' * 1000000 }}{% endfor %}", "output longer than 64 MiB");
  expect_error("{% macro m() %}{% for i in range(100000) %}{{ 'a' * 1000000 }}{% endfor %}{% endmacro %}{{ m() }}", "output longer than 64 MiB");
  expect_error("{% set c %}{% for i in range(100000) %}{{ 'a' * 1000000 }}{% endfor %}{% endset %}", "output longer than 64 MiB");
  // Many values alive at once: the render's total.
  expect_error("{% set l = [] %}{% for i in range(100000) %}{{ l.append('x' * 10000) }}{% endfor %}", "render needs more than 256 MiB of memory");
  expect_error("{% set ns = namespace() %}{% for i in range(100000) %}{% set ns.l = [ns.l, 'y' * 10000] %}{% endfor %}",
               "render needs more than 256 MiB of memory");
  // What is freed is given back: the same total in small live pieces is fine.
  EXPECT_EQ(render_ok("{% for i in range(30000) %}{% set s = 'x' * 10000 %}{% endfor %}done"), "done");
  Limits small;
  small.max_memory = 1 << 20;
  const Outcome o = run("{% set l = [] %}{% for i in range(1000) %}{{ l.append('x' * 10000) }}{% endfor %}", "{}", small);
  EXPECT_NE(o.text.find("render needs more than 1 MiB of memory"), std::string::npos) << o.text;
}

// ---- the whole template goes through ChatTemplate as camelid::Error ----

TEST(JinjaSandbox, ChatTemplateErrorsAreCamelidErrors) {
  EXPECT_THROW(ChatTemplate("{% if %}", "<s>", "</s>"), camelid::Error);
  EXPECT_THROW(ChatTemplate("{{ " + repeat("(", 100000) + " }}", "<s>", "</s>"), camelid::Error);
  EXPECT_THROW(ChatTemplate(std::string(2 << 20, 'a'), "<s>", "</s>"), camelid::Error);
  ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  for (const char* src : {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
                          "{% for m in messages %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
                          "{{ messages[0].content * 10**12 }}", "{{ 2 ** 64 }}", "{{ raise_exception('no') }}", "{{ nope() }}"}) {
    const ChatTemplate t(src, "<s>", "</s>");
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(t.render(in), camelid::Error) << src;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), kQuickSeconds) << src;
  }
  // Messages nested deeper than the depth limit (the server's JSON parser stops at 128 already).
  nlohmann::ordered_json deep = "x";
  for (int i = 0; i < 5000; ++i) {
    nlohmann::ordered_json outer = nlohmann::ordered_json::array();
    outer.push_back(std::move(deep));
    deep = std::move(outer);
  }
  in.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", deep}}});
  EXPECT_THROW(ChatTemplate("{{ messages }}", "", "").render(in), LimitError);
}

// Recursion at the depth limit fits a small thread stack (the server renders on its HTTP
// threads): the deepest hostile templates end with LimitError on a 1 MiB stack (8 MiB under ASan).
TEST(JinjaSandbox, DepthLimitFitsASmallThreadStack) {
  const size_t stack = testing_support::kAddressSanitizer ? 8 << 20 : 1 << 20;
  struct Job {
    std::vector<std::string> srcs;
    std::vector<std::string> errors;
  } job;
  const std::string deep = "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}";
  job.srcs = {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
              "{% macro f() %}{% for x in [1] %}{% if true %}{{ (f() ~ 'a') | trim }}{% endif %}{% endfor %}{% endmacro %}{{ f() }}",
              "{% macro f(a=f()) %}{% endmacro %}{{ f() }}",
              "{% macro f() %}{% set x %}{{ f() }}{% endset %}{% endmacro %}{{ f() }}",
              "{% macro f() %}{{ [f()] | map('string') | join }}{% endmacro %}{{ f() }}",
              deep + "{{ ns.l }}", deep + "{{ ns.l | tojson(indent=1) }}", deep + "{{ ns.l == ns.l }}",
              deep + "{{ ns.l | map(" + repeat("'map', ", 5000) + "'string') | list }}",
              "{{ " + repeat("(", 190) + "1" + repeat(")", 190) + " }}",
              "{{ x" + repeat(" | default(1)", 190) + " }}"};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack);
  pthread_t th;
  auto body = [](void* p) -> void* {
    Job& j = *static_cast<Job*>(p);
    for (const std::string& s : j.srcs) {
      try {
        Template(s).render({});
        j.errors.push_back("");
      } catch (const TemplateError& e) {
        j.errors.push_back(e.what());
      }
    }
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&th, &attr, body, &job), 0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
  ASSERT_EQ(job.errors.size(), job.srcs.size());
  for (size_t i = 0; i + 2 < job.srcs.size(); ++i)
    EXPECT_NE(job.errors[i].find("recursion deeper than"), std::string::npos) << job.srcs[i].substr(0, 200) << ": " << job.errors[i];
  EXPECT_EQ(job.errors[job.srcs.size() - 2], "");
  EXPECT_EQ(job.errors[job.srcs.size() - 1], "");
}

// ---- legitimate use, measured against the limits ----

nlohmann::ordered_json long_conversation(int n) {
  using json = nlohmann::ordered_json;
  json ms = json::array({{{"role", "system"}, {"content", "You are a helpful assistant. Answer briefly."}}});
  for (int i = 0; i < n; ++i) {
    const std::string text = "Message " + std::to_string(i) + ": " + repeat("some words of a long conversation, ", 8);
    if (i % 4 == 0) ms.push_back({{"role", "user"}, {"content", text}});
    else if (i % 4 == 1)
      ms.push_back({{"role", "assistant"},
                    {"tool_calls", json::array({{{"type", "function"},
                                                 {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}, {"day", i}}}}}}})}});
    else if (i % 4 == 2) ms.push_back({{"role", "ipython"}, {"content", "{\"temp\": " + std::to_string(i) + "}"}});
    else ms.push_back({{"role", "assistant"}, {"content", text}});
  }
  return ms;
}

nlohmann::ordered_json some_tools(int n) {
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  for (int i = 0; i < n; ++i)
    tools.push_back(nlohmann::ordered_json::parse(R"({"type": "function", "function": {"name": "tool_)" + std::to_string(i) +
                                                  R"(", "description": "Does something useful with a city and a day",
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "a city"},
      "day": {"type": "integer"}}, "required": ["city"]}}})"));
  return tools;
}

TEST(JinjaSandbox, RealTemplatesStayFarInsideTheLimits) {
  struct Case {
    const char* name;
    std::string source, bos, eos;
    bool tools;
  };
  const std::vector<Case> cases = {
      {"llama-3.1 (templates/)", read_file(test::fixture("templates/llama-3.1-instruct.jinja")), "<|begin_of_text|>", "<|eot_id|>", true},
      {"llama-3.2 (templates/)", read_file(test::fixture("templates/llama-3.2-instruct.jinja")), "<|begin_of_text|>", "<|eot_id|>", true},
      {"tiny-llama3", ChatTemplate::from_model_dir(test::fixture("models/tiny-llama3")).source(), "<|begin_of_text|>", "<|eot_id|>", true},
  };
  const Limits lim;
  for (const Case& c : cases) {
    const ChatTemplate t(c.source, c.bos, c.eos);
    ChatTemplateInputs in;
    in.messages = long_conversation(1000);
    in.tools = some_tools(20);
    RenderStats stats;
    const auto t0 = std::chrono::steady_clock::now();
    const std::string out = t.render(in, lim, &stats);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-24s 1000 messages + 20 tools: %zu bytes out, %lld steps (%.2f%% of %lld), peak %.1f MiB (%.2f%% of %zu MiB), %.1f ms\n",
                c.name, out.size(), (long long)stats.steps, 100.0 * double(stats.steps) / double(lim.max_steps),
                (long long)lim.max_steps, double(stats.peak_bytes) / (1 << 20), 100.0 * double(stats.peak_bytes) / double(lim.max_memory),
                lim.max_memory >> 20, secs * 1e3);
    EXPECT_LT(stats.steps, lim.max_steps / 20) << c.name;
    EXPECT_LT(stats.peak_bytes, lim.max_memory / 20) << c.name;
  }
  // The Llama 2 template (no tools) on the same conversation without tool turns.
  const ChatTemplate t2 = ChatTemplate::from_model_dir(test::fixture("models/tiny-llama2"));
  ChatTemplateInputs in;
  for (int i = 0; i < 1000; ++i)
    in.messages.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "Message " + std::to_string(i) + repeat(" words", 40)}});
  RenderStats stats;
  const std::string out = t2.render(in, lim, &stats);
  std::printf("%-24s 1000 messages: %zu bytes out, %lld steps, peak %.1f MiB\n", "tiny-llama2", out.size(), (long long)stats.steps,
              double(stats.peak_bytes) / (1 << 20));
  EXPECT_LT(stats.steps, lim.max_steps / 20);
}

// How long a render that uses the whole step budget takes: the bound on a hostile template's time.
TEST(JinjaSandbox, FullBudgetTakesAboutASecond) {
  for (const char* src : {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                          "{% for i in range(100000) %}{% for j in range(100000) %}{{ (i ~ j) | trim }}{% endfor %}{% endfor %}",
                          "{% macro f(n) %}{{ f(n) if n > 0 else '' }}{{ f(n - 1) if n > 0 else '' }}{% endmacro %}{{ f(100) }}",
                          "{% set d = {} %}{% for i in range(100000) %}{{ d.update({i ~ '': i}) }}{% endfor %}"}) {
    const Outcome o = run(src);
    std::printf("full budget: %.2f s: %s\n", o.seconds, o.text.c_str());
    EXPECT_TRUE(o.limit) << src << ": " << o.text;
    EXPECT_LT(o.seconds, kQuickSeconds) << src;
  }
}

}  // namespace
}  // namespace camelid::jinja
