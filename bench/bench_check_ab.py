#!/usr/bin/env python3
"""`aksspark-tokenctl check` of two client builds side by side, interleaved run by run against
one signed-in daemon, so that both see the same machine load: what a change to the client (new
code, a new library) costs every scheduled job and kubectl call.

    python3 bench/bench_check_ab.py --before OLD/aksspark-tokenctl --after NEW/aksspark-tokenctl [-n 1000]

The daemon and the identity provider come from --build (default: build/).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import harness, percentile, row, spawn_times  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("-n", type=int, default=1000)
    args = ap.parse_args()
    benchlib.use_build(args.build)
    with harness.Env(prefix="aksspark-bench-ab-") as env:
        idp = env.start_idp(lifetime=3600)
        env.write_config(daemon={"log_level": "warning"})
        d = env.start_daemon()
        d.sign_in(idp)
        argv = {k: [p, "--socket", d.socket_path, "check"] for k, p in (("before", args.before), ("after", args.after))}
        for k in argv:  # warm the page cache
            spawn_times(argv[k], 20)
        times = {"before": [], "after": []}
        for i in range(args.n):
            for k in (("before", "after") if i % 2 else ("after", "before")):
                times[k] += spawn_times(argv[k], 1)
        benchlib.header("check, two client builds interleaved (%d runs each)" % args.n)
        for p in (50, 90, 99):
            row("`check` p%d, after / before" % p, percentile(times["after"], p), percentile(times["before"], p),
                "before")


if __name__ == "__main__":
    main()
