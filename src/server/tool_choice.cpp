#include "server/tool_choice.h"

#include "core/error.h"
#include "runtime/json_schema_grammar.h"

namespace camelid::tools {

using json = nlohmann::ordered_json;

CallFormat call_format(const std::string& source) {
  if (source.find("<tool_call>") != std::string::npos) return CallFormat::Hermes;
  if (source.find("<function=") != std::string::npos) return CallFormat::FunctionTag;
  return CallFormat::LlamaJson;
}

std::string tool_choice_grammar(const json& tools, CallFormat format, bool several) {
  std::string rules, calls;
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& f = tools[i]["function"];
    const std::string name = f["name"].get<std::string>();
    const std::string args = "args" + std::to_string(i);
    auto p = f.find("parameters");
    if (p == f.end() || p->is_null()) {
      rules += args + " ::= \"{}\"\n";  // a function without parameters takes none
    } else {
      try {
        rules += json_schema_rules(*p, args);
      } catch (const Error&) {  // a schema we cannot enforce: its arguments are any object
        rules += args + " ::= json-object\n";
      }
    }
    const std::string quoted = json(name).dump();  // the name as a JSON string
    std::string call;
    switch (format) {
      case CallFormat::LlamaJson:
        call = gbnf_literal("{\"name\": " + quoted + ", \"parameters\": ") + " " + args + " " + gbnf_literal("}");
        break;
      case CallFormat::Hermes:
        call = gbnf_literal("<tool_call>\n{\"name\": " + quoted + ", \"arguments\": ") + " " + args + " " +
               gbnf_literal("}\n</tool_call>");
        break;
      case CallFormat::FunctionTag:
        call = gbnf_literal("<function=" + name + ">") + " " + args + " " + gbnf_literal("</function>");
        break;
    }
    calls += (calls.empty() ? "" : " | ") + call;
  }
  const std::string sep = gbnf_literal(format == CallFormat::LlamaJson ? "; " : "\n");
  std::string out = "root ::= call" + (several ? " ( " + sep + " call ){0,7}" : std::string()) + "\n";
  out += "call ::= " + calls + "\n" + rules + json_primitive_rules();
  return out;
}

}  // namespace camelid::tools
