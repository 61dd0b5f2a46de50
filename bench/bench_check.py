#!/usr/bin/env python3
"""`aksspark-tokenctl check` and `token` on a cached token, as a scheduled job or a kubectl exec
plugin pays for them, against /bin/true (the floor: a process spawn) and against `oidc-token`
(oidc-agent's client asking its agent for a cached access token), from one run.

    python3 bench/bench_check.py [--build DIR] [-n 300]

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
    args = ap.parse_args()
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

            check = spawn_times(ctl + ["check"], n)
            token = spawn_times(ctl + ["token"], n)
            true = spawn_times(["/bin/true"], n)
            otok = spawn_times(oidc, n, env=agent.env)
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
            print("(no request reached the identity provider during the timed runs: both served a cached token)")
        finally:
            agent.stop()
        d.stop()


if __name__ == "__main__":
    main()
