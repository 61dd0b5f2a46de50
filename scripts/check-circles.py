#!/usr/bin/env python3
"""Fails when files of the daemon call each other in a circle (README, Architecture).

A circle: files whose functions call each other's, directly or around a chain. Calls count, not
only includes, so the graph is read from a build's object files: `nm` gives each .o the symbols
it defines and the ones it needs; an undefined symbol of A defined by B is an edge A -> B. The
strongly connected components of that graph with more than one file are the circles. A file
calling itself is no circle.

Usage: scripts/check-circles.py BUILD_DIR   (exit 1 and one line per circle)
"""
import os
import subprocess
import sys


def object_files(build):
    """The daemon's objects (daemon/**/*.o of the build), one per source file."""
    found = {}
    for dirpath, _, names in os.walk(os.path.join(build, "daemon")):
        for name in sorted(names):
            if name.endswith(".o"):
                # meson names them <folder>_<file>.c.o inside <target>.p/
                source = name[:-len(".o")].replace("_", "/", 1)
                found.setdefault(source, os.path.join(dirpath, name))
    return found


def symbols(path):
    """(defined, undefined) global symbol names of one object file."""
    out = subprocess.run(["nm", "-P", path], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


def call_graph(objects):
    """{file: set of files it calls}, self-edges left out."""
    defined_by, needs = {}, {}
    for source, path in objects.items():
        defined, undefined = symbols(path)
        needs[source] = undefined
        for name in defined:
            defined_by.setdefault(name, source)
    graph = {}
    for source, undefined in needs.items():
        graph[source] = {defined_by[n] for n in undefined if n in defined_by and defined_by[n] != source}
    return graph


def circles(graph):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    component.append(n)
                    if n == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return sorted(result)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    objects = object_files(sys.argv[1])
    if not objects:
        print("check-circles: no object files under %s/daemon; build first" % sys.argv[1])
        return 2
    found = circles(call_graph(objects))
    for component in found:
        print("check-circles: a circle of files: " + " <-> ".join(component))
    if found:
        print("check-circles: %d circles" % len(found))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
