"""Validates OCSF events, one JSON object per line, against the schema given:

    python validate.py SCHEMA EVENTS.jsonl

Prints every violation with its line and class, and exits 1 if there is any.
Needs the `jsonschema` package (the MCP test venv has it)."""

import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(
    schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
bad = 0
classes = {}
with open(sys.argv[2]) as f:
    for n, line in enumerate(f, 1):
        event = json.loads(line)
        cls = event.get("class_uid")
        classes[cls] = classes.get(cls, 0) + 1
        for e in validator.iter_errors(event):
            bad += 1
            where = "/".join(str(p) for p in e.absolute_path) or "(event)"
            code = event.get("metadata", {}).get("event_code")
            print(f"line {n} (class {cls}, {code}): {where}: {e.message}")
print("classes: " + ", ".join(f"{k}={v}" for k, v in sorted(classes.items(), key=str)))
print(f"{bad} violation(s)")
sys.exit(1 if bad else 0)
