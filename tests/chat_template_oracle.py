#!/usr/bin/env python3
"""Renders every chat template of tests/data/chat_templates/manifest.json with every conversation
of conversations.json (add_generation_prompt true and false) through jinja2 configured as
transformers renders chat templates, and prints the results as one JSON document:
  {"cases": [{"template": F, "conversation": N, "add_generation_prompt": B,
              "rendered": TEXT | "raised": MESSAGE | "failed": "Type: message"}, ...]}
"raised" is the template's own raise_exception(); "failed" any other jinja2 error.
Usage: chat_template_oracle.py DATA_DIR NOW_UNIX_SECONDS (strftime_now's clock, in UTC)."""
import datetime
import json
import os
import sys

try:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as e:
    sys.stderr.write("chat_template_oracle: python3-jinja2 is not installed (%s); "
                     "run scripts/install-deps.sh\n" % e)
    sys.exit(2)


class Raised(Exception):
    pass


def environment(now):
    # As transformers.utils.chat_template_utils._compile_jinja_template (its AssistantTracker
    # extension only adds {% generation %}, which renders its body).
    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    data_dir, now = sys.argv[1], int(sys.argv[2])
    env = environment(now)
    with open(os.path.join(data_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    with open(os.path.join(data_dir, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)["conversations"]
    cases = []
    for t in manifest["templates"]:
        with open(os.path.join(data_dir, t["file"]), encoding="utf-8") as f:
            source = f.read()
        try:
            tmpl = env.from_string(source)
        except jinja2.TemplateError as e:
            cases.append({"template": t["file"], "syntax_error": "%s: %s" % (type(e).__name__, e)})
            continue
        for c in conversations:
            for agp in (True, False):
                case = {"template": t["file"], "conversation": c["name"], "add_generation_prompt": agp}
                kw = {"messages": c["messages"], "add_generation_prompt": agp,
                      "bos_token": t["bos"], "eos_token": t["eos"]}
                kw.update(t.get("vars", {}))
                if "tools" in c:
                    kw["tools"] = c["tools"]
                try:
                    case["rendered"] = tmpl.render(**kw)
                except Raised as e:
                    case["raised"] = str(e)
                except Exception as e:  # any error of the template: the other side must fail too
                    case["failed"] = "%s: %s" % (type(e).__name__, e)
                cases.append(case)
    json.dump({"cases": cases}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
