#!/usr/bin/env python3
"""`aksspark-tokenctl check` and `token` on a cached token, as a scheduled job or a kubectl exec
plugin pays for them, against /bin/true (the floor: a process spawn) and against `oidc-token`
(oidc-agent's client asking its agent for a cached access token), from one run.

    python3 bench/bench_check.py [--build DIR] [-n 300] [--compare OTHER_BUILD_DIR]

The runs of the kinds are interleaved (one of each in turn), so that a machine shared with other
work slows each kind alike and the ratios stay fair. --compare times the aksspark-tokenctl of
another build in the same rounds (before/after a change).

The identity provider is the local fake (HTTPS); oidc-agent's account is made by `oidc-gen`
with the device flow against it (see benchlib.OidcAgent).
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import harness, percentile, row, spawn_times  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--compare")
    args = ap.parse_args()
    other = os.path.join(os.path.abspath(args.compare), "aksspark-tokenctl") if args.compare else None
    benchlib.use_build(args.build)
    n = args.n
    with harness.Env(prefix="aksspark-bench-check-") as env:
        idp = env.start_idp(lifetime=3600)
        env.write_config(daemon={"log_level": "warning"})
        d = env.start_daemon()
        d.sign_in(idp)
        idp.set(auto_approve_user="alice@contoso.com")
        agent = benchlib.OidcAgent(env.root, idp)
        agent.start()
        try:
            agent.generate()
            ctl = [harness.TOKENCTL, "--socket", d.socket_path]
            oidc = agent.token_argv()
            # Warm the page cache and both servers.
            spawn_times(ctl + ["check"], 10)
            spawn_times(oidc, 10, env=agent.env)
            spawn_times(["/bin/true"], 10)
            requests_before = len(idp.requests("token"))

            kinds = [("check", ctl + ["check"], None), ("token", ctl + ["token"], None),
                     ("true", ["/bin/true"], None), ("oidc", oidc, agent.env)]
            if other:
                kinds.append(("other", [other, "--socket", d.socket_path, "check"], None))
            times = {k: [] for k, _, _ in kinds}
            for _ in range(n):
                for k, argv, e in kinds:
                    times[k] += spawn_times(argv, 1, env=e)
            check, token, true, otok = times["check"], times["token"], times["true"], times["oidc"]
            if len(idp.requests("token")) != requests_before:
                raise SystemExit("a token request reached the idp: not a cached token")

            benchlib.header("check and token on a cached token (%d runs each)" % n)
            for p, what in ((50, "p50"), (99, "p99")):
                row("`aksspark-tokenctl check` %s" % what, percentile(check, p), percentile(true, p), "/bin/true")
            for p, what in ((50, "p50"), (99, "p99")):
                row("`aksspark-tokenctl check` %s" % what, percentile(check, p), percentile(otok, p), "oidc-token")
            for p, what in ((50, "p50"), (99, "p99")):
                row("`aksspark-tokenctl token` %s" % what, percentile(token, p), percentile(otok, p), "oidc-token")
            row("`aksspark-tokenctl token` mean", statistics.mean(token), statistics.mean(otok), "oidc-token")
            if other:
                for p, what in ((50, "p50"), (99, "p99")):
                    row("`aksspark-tokenctl check` %s" % what, percentile(check, p), percentile(times["other"], p),
                        "--compare build")
                for p, what in ((50, "p50"), (99, "p99")):
                    row("--compare build's check %s" % what, percentile(times["other"], p), percentile(true, p),
                        "/bin/true")
            print("load average (1, 5, 15 min) at the end: %.2f %.2f %.2f" % os.getloadavg())
            print("(no request reached the identity provider during the timed runs: both served a cached token)")
        finally:
            agent.stop()
        d.stop()


if __name__ == "__main__":
    main()
