#!/usr/bin/env python3
"""Writes compile_commands.json (for clangd and clang-tidy) from the compile lines of a dry run of
the PGXS build, `make -n -B` on stdin: every "... -c -o OBJ SRC" line becomes one entry. A dry
run compiles nothing, so this takes a second where `bear -- make` would rebuild the tree."""
import json
import os
import shlex
import sys

directory = os.getcwd()
entries = []
for line in sys.stdin:
    words = shlex.split(line.strip()) if " -c -o " in line else []
    if not words or not words[-1].endswith((".cpp", ".c")):
        continue
    entries.append({"directory": directory, "arguments": words,
                    "file": os.path.join(directory, words[-1])})
json.dump(entries, sys.stdout, indent=1)
sys.stdout.write("\n")
