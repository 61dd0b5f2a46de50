#!/usr/bin/env python3
"""Where one daemon's own memory goes, and what trims it: after a sign-in and three refreshes,
the private dirty memory of each mapping (/proc/PID/smaps: relocated library data, .bss, heap,
stack), for this build and for --compare (another build, e.g. main), each with and without the
environment settings given by --env (default: GNUTLS_NO_IMPLICIT_INIT=1, as the units set it).
Private dirty memory is what each of 1,000 daemons pays for itself; shared library text is paid
once. Figures are exact page counts, so a single run of each variant is enough.

    python3 bench/bench_trim.py [--build DIR] [--compare DIR] [--env NAME=VALUE ...] [--top 12]
"""

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import common, harness  # noqa: E402


def smaps(pid):
    """{mapping name: Counter(field: KiB)}; anonymous mappings next to a library are its .bss."""
    out = collections.defaultdict(collections.Counter)
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0] and ":" not in parts[0]:
                cur = parts[5] if len(parts) > 5 else "[anonymous: library .bss, mmap]"
            elif parts and parts[0].endswith(":") and len(parts) >= 2 and parts[1].isdigit():
                out[cur][parts[0][:-1]] += int(parts[1])
    return out


def measure(build, env):
    tokend, tokenctl = harness.TOKEND, harness.TOKENCTL
    harness.TOKEND, harness.TOKENCTL = os.path.join(build, "aksspark-tokend"), os.path.join(build, "aksspark-tokenctl")
    try:
        with harness.Env(prefix="aksspark-bench-trim-") as e:
            idp = e.start_idp(lifetime=3600)
            e.write_config(daemon={"log_level": "info"})
            d = e.start_daemon(env=env)
            d.sign_in(idp)
            for _ in range(3):
                d.ctl("refresh", check=True)
            time.sleep(0.5)
            maps = smaps(d.pid)
            threads = len(os.listdir("/proc/%d/task" % d.pid))
            d.stop()
            return maps, threads
    finally:
        harness.TOKEND, harness.TOKENCTL = tokend, tokenctl


def total(maps, field):
    return sum(c[field] for c in maps.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("--compare")
    ap.add_argument("--env", action="append")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    build = benchlib.use_build(args.build)
    env = dict(e.split("=", 1) for e in (args.env or ["GNUTLS_NO_IMPLICIT_INIT=1"]))
    variants = [("this build", build, {}), ("this build + %s" % " ".join("%s=%s" % kv for kv in env.items()), build, env)]
    if args.compare:
        variants = [("--compare", os.path.abspath(args.compare), {}),
                    ("--compare + env", os.path.abspath(args.compare), env)] + variants
    results = [(name, measure(b, e)) for name, b, e in variants]

    print("== one daemon's private memory after a sign-in and three refreshes")
    print("machine: %s" % common.machine())
    print("command: %s" % " ".join(sys.argv))
    base = total(results[0][1][0], "Private_Dirty")
    for name, (maps, threads) in results:
        libs = sum(1 for n in maps if ".so" in n)
        pd = total(maps, "Private_Dirty")
        print("%-60s private dirty %5d KiB (%+5d KiB, %.2fx), anonymous %5d KiB, heap %4d KiB, %d libraries, "
              "%d thread(s)" % (name, pd, pd - base, pd / base, total(maps, "Anonymous"),
                                maps["[heap]"]["Private_Dirty"], libs, threads))
    maps = results[-1][1][0]
    print("where it goes (%s), by private dirty KiB:" % results[-1][0])
    rows = sorted(maps.items(), key=lambda kv: -kv[1]["Private_Dirty"])
    for name, c in rows[:args.top]:
        print("  %5d  %s" % (c["Private_Dirty"], name))
    rest = rows[args.top:]
    print("  %5d  %d other mappings (libraries' relocated data and .bss, 8-36 KiB each)"
          % (sum(c["Private_Dirty"] for _, c in rest), len(rest)))


if __name__ == "__main__":
    main()
