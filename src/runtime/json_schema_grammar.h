#pragma once
// JSON Schema -> GBNF grammar text (for parse_grammar), for structured output. Supported:
// type (one or a list: object, array, string, number, integer, boolean, null), properties +
// required (properties in the declared order; additional properties are never generated, as
// with OpenAI's strict mode, additionalProperties alone gives a map), enum, const, items,
// prefixItems (and draft 7's items array + additionalItems), minItems/maxItems, uniqueItems on
// items that list at most 8 values (enum/const/boolean/null; a rule per subset written), anyOf/oneOf
// (both as "one of the alternatives"), allOf with one member, $ref to #/$defs/... or
// #/definitions/... (recursive ones too), string minLength/maxLength, pattern (regex_grammar.h)
// and format date, time, date-time, uuid, ipv4, ipv6, hostname, email; minimum / maximum /
// exclusiveMinimum / exclusiveMaximum on integers, and whole-number ones on numbers
// (json_number_ranges.h), multipleOf 1 or 0.1, 0.01, ... Validation keywords outside this list (not,
// if/then/else, ...) are an Error naming the keyword and where it is, never silently ignored
// (an anyOf/oneOf alternative with one is left out while another alternative remains);
// annotations (title, description, default, ...) are ignored. What the grammar writes is a
// subset of what the schema accepts (e.g. every prefix item, canonical string escapes).
// Whitespace between tokens is bounded (at most one newline and 20 spaces/tabs), so a model
// cannot loop forever on it.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "runtime/gbnf_text.h"

namespace camelid {

// Throws Error("json_schema: #/path: ...") for what it cannot enforce. Ordered JSON: properties
// are generated in the order the schema declares them.
std::string json_schema_to_grammar(const nlohmann::ordered_json& schema);
std::string json_schema_text_to_grammar(std::string_view schema_text);  // parsed with depth limits
// For grammars that combine several schemas (tool calls): `name ::= ...` for the schema plus its
// helper rules (named `name-N`), without the shared JSON rules (json-*, ws), which
// json_primitive_rules() writes once. Same errors as json_schema_to_grammar.
std::string json_schema_rules(const nlohmann::ordered_json& schema, const std::string& name);
std::string json_primitive_rules();
// Any JSON object (response_format {"type": "json_object"}).
std::string json_object_grammar();

}  // namespace camelid
