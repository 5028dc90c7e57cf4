#!/usr/bin/env python3
"""Regenerate deployer/data/iam_catalog.txt: every IAM action with its resource
types (ARN formats) and condition keys, from the service definitions parliament
(the IAM policy linter) ships, so that stackctl's `statements:` checks and
parliament agree. Usage: pip install parliament && python3 deployer/data/iam_catalog.py

Format, one record per line:
  @prefix                      a service block (a prefix may have several)
  r NAME ARN-FORMAT            a resource type of the block
  a ACTION TYPES|KEYS          an action: resource types (`*` = required), comma
                               separated; its condition keys, comma separated
  c KEY TYPE                   a condition key of the block and its type
"""
import importlib.metadata, json, os, pathlib, parliament

src = pathlib.Path(parliament.__file__).with_name("iam_definition.json")
out = pathlib.Path(__file__).with_name("iam_catalog.txt")
lines = ["# parliament %s iam_definition.json; regenerate with iam_catalog.py" % importlib.metadata.version("parliament")]
# File order: parliament looks an action up in the first block of its prefix that has it.
for s in json.loads(src.read_text()):
    lines.append("@" + s["prefix"])
    for r in s["resources"]:
        lines.append("r %s %s" % (r["resource"], r["arn"]))
    for c in s["conditions"]:
        lines.append("c %s %s" % (c["condition"], c["type"]))
    for p in s["privileges"]:
        types, keys = [], []
        for rt in p["resource_types"]:
            if rt["resource_type"]:
                types.append(rt["resource_type"])
            for k in rt["condition_keys"]:
                if k not in keys:
                    keys.append(k)
        lines.append("a %s %s|%s" % (p["privilege"], ",".join(types), ",".join(keys)))
out.write_text("\n".join(lines) + "\n")
