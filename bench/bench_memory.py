#!/usr/bin/env python3
"""Memory of an idle daemon with 1 and with 20 signed-in profiles, against oidc-agent with 1
and with 20 loaded accounts: VmRSS (/proc/PID/status) and PSS (/proc/PID/smaps_rollup, shared
library pages divided among their users), after each has served a token. From one run.

    python3 bench/bench_memory.py [--build DIR] [--profiles 20]
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import common, harness, row  # noqa: E402


def kib(x):
    return "%d KiB" % x


def anon_kib(pid):
    """Anonymous (heap, stacks) memory of a process: what it allocated itself."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return 0


def daemon_memory(n, idp_lifetime=3600):
    with harness.Env(prefix="aksspark-bench-mem-") as env:
        idp = env.start_idp(lifetime=idp_lifetime)
        names = ["default"] + ["p%02d" % i for i in range(1, n)]
        env.write_config(profiles={p: {"token_file": env.path("out", p, "token"),
                                       "spark_properties": env.path("out", p, "spark.properties")}
                                   for p in names}, daemon={"log_level": "info"})
        d = env.start_daemon()
        for p in names:
            d.sign_in(idp, profile=p)
        for p in names:
            d.request({"op": "token", "profile": p})
        time.sleep(1)
        rss, pss, anon = common.proc_rss_kib(d.pid), common.proc_pss_kib(d.pid), anon_kib(d.pid)
        d.stop()
        return rss, pss, anon


def agent_memory(n):
    with harness.Env(prefix="aksspark-bench-mem-") as env:
        idp = env.start_idp(lifetime=3600)
        idp.set(auto_approve_user="alice@contoso.com")
        agent = benchlib.OidcAgent(env.root, idp)
        agent.start()
        try:
            for i in range(n):
                agent.account = "acct%02d" % i
                agent.generate()
                subprocess.run(agent.token_argv(), env=agent.env, capture_output=True, check=True)
            time.sleep(1)
            pids = agent.pids()
            return (sum(common.proc_rss_kib(p) for p in pids), sum(common.proc_pss_kib(p) for p in pids),
                    sum(anon_kib(p) for p in pids))
        finally:
            agent.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("--profiles", type=int, default=20)
    args = ap.parse_args()
    benchlib.use_build(args.build)
    n = args.profiles
    d1, dn = daemon_memory(1), daemon_memory(n)
    a1, an = agent_memory(1), agent_memory(n)
    benchlib.header("idle memory, 1 and %d profiles / accounts" % n)
    row("VmRSS, 1 profile", d1[0], a1[0], "oidc-agent, 1 account", fmt=kib)
    row("PSS, 1 profile", d1[1], a1[1], "oidc-agent, 1 account", fmt=kib)
    row("VmRSS, %d profiles" % n, dn[0], an[0], "oidc-agent, %d accounts" % n, fmt=kib)
    row("PSS, %d profiles" % n, dn[1], an[1], "oidc-agent, %d accounts" % n, fmt=kib)
    row("anonymous (heap), 1 profile", d1[2], a1[2], "oidc-agent, 1 account", fmt=kib)
    row("anonymous (heap), %d profiles" % n, dn[2], an[2], "oidc-agent, %d accounts" % n, fmt=kib)
    print("(oidc-agent runs as two processes, both counted)")
    print("per extra profile: %+.1f KiB RSS, %+.1f KiB PSS (oidc-agent per extra account: %+.1f KiB RSS, %+.1f KiB PSS)"
          % ((dn[0] - d1[0]) / (n - 1), (dn[1] - d1[1]) / (n - 1), (an[0] - a1[0]) / (n - 1), (an[1] - a1[1]) / (n - 1)))


if __name__ == "__main__":
    main()
