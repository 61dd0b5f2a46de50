#!/usr/bin/env python3
"""Fails when a file of the daemon includes a header of a layer it may not use.

The rule (README, Architecture): each folder of daemon/ is a layer, and a file may include its
own layer's headers and those of the layers listed for it below, never a higher one. Includes
are written with their folder ("loop/http.h"), so the folder is the layer. main.c and manager.c
wire the layers together and may include all of them. An include without a folder is allowed
only for the generated version.h and for the file's private header beside it.

Usage: scripts/check-layers.py [SOURCE_DIR]   (exit 1 and one line per forbidden include)
"""
import os
import re
import sys

MAY_USE = {
    "base": [],
    "shared": ["base"],
    "loop": ["base", "shared"],
    "idp": ["base", "shared", "loop"],
    "outputs": ["base", "shared", "loop"],
    "profile": ["base", "shared", "loop", "idp", "outputs"],
    "server": ["base", "shared", "loop", "profile"],
    "tokenctl": ["base", "shared"],
}
TOP = {"main.c", "manager.c", "manager.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def layer_of(root, path):
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] in ("daemon", "include") and len(rel) == 3 and rel[1] in MAY_USE:
        return rel[1]
    if rel[0] == "daemon" and len(rel) == 2 and rel[1] in TOP:
        return "top"
    return None


def check(root):
    errors = []
    for base in ("daemon", "include"):
        for dirpath, _, names in os.walk(os.path.join(root, base)):
            for name in sorted(names):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                layer = layer_of(root, path)
                if layer is None:
                    errors.append("%s: a file outside the layer folders" % rel)
                    continue
                text = open(path, encoding="utf-8").read()
                for m in INCLUDE.finditer(text):
                    target = m.group(1)
                    line = text.count("\n", 0, m.start()) + 1
                    if "/" not in target:
                        if target == "version.h" or os.path.exists(os.path.join(dirpath, target)):
                            continue
                        errors.append('%s:%d: "%s" has no folder' % (rel, line, target))
                        continue
                    to = target.split("/")[0]
                    if layer == "top" or to == layer:
                        continue
                    if to not in MAY_USE:
                        errors.append('%s:%d: "%s" is in no layer' % (rel, line, target))
                    elif to not in MAY_USE[layer]:
                        errors.append('%s:%d: %s/ may not include %s (%s/ uses only %s)' %
                                      (rel, line, layer, target, layer, ", ".join(MAY_USE[layer]) or "itself"))
    return errors


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    errors = check(os.path.abspath(root))
    for e in errors:
        print("check-layers: " + e)
    if errors:
        print("check-layers: %d forbidden includes" % len(errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
