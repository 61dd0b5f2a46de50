#!/usr/bin/env python3
"""Start to READY: from exec of aksspark-tokend to READY=1 on its NOTIFY_SOCKET (configuration
read, state loaded, socket listening), with a signed-in profile, against the exec and exit of
/bin/true and the start of oidc-agent (until its command returns with the socket bound). From
one run.

    python3 bench/bench_startup.py [--build DIR] [-n 50]
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import harness, percentile, row, spawn_times  # noqa: E402


def start_to_ready(env, n, profiles=1):
    """n starts of the daemon; seconds from Popen to READY=1 each."""
    out = []
    notify_path = env.path("bench-notify.sock")
    if os.path.exists(notify_path):
        os.unlink(notify_path)
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(notify_path)
    ns.settimeout(10)
    e = env.daemon_environment({"NOTIFY_SOCKET": notify_path})
    argv = [harness.TOKEND, "--config", env.config_path] + (["--allow-root"] if harness.IS_ROOT else [])
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            while True:
                msg = ns.recv(4096).decode()
                if "READY=1" in msg.split("\n"):
                    break
            out.append(time.perf_counter() - t0)
            p.send_signal(signal.SIGTERM)
            if p.wait(timeout=10) != 0:
                raise RuntimeError("the daemon exited %d" % p.returncode)
            try:   # drain STOPPING=1 and the rest
                ns.settimeout(0.01)
                while ns.recv(4096):
                    pass
            except socket.timeout:
                pass
            ns.settimeout(10)
    finally:
        ns.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("-n", type=int, default=50)
    args = ap.parse_args()
    benchlib.use_build(args.build)
    n = args.n
    with harness.Env(prefix="aksspark-bench-start-") as env:
        idp = env.start_idp(lifetime=3600)
        env.write_config(daemon={"log_level": "info"})
        d = env.start_daemon()
        d.sign_in(idp)
        d.stop()
        start_to_ready(env, 5)
        ready = start_to_ready(env, n)
        true = spawn_times(["/bin/true"], n)
        agent_starts = []
        if shutil.which("oidc-agent"):
            for i in range(n + 3):
                a = benchlib.OidcAgent(env.path("agent%d" % i), idp)
                os.makedirs(a.root, exist_ok=True)
                t = a.start()
                a.stop()
                if i >= 3:
                    agent_starts.append(t)
    benchlib.header("start to READY=1 (%d starts, signed-in profile loaded from the state directory)" % n)
    for p, what in ((50, "p50"), (90, "p90")):
        row("exec -> READY=1, %s" % what, percentile(ready, p), percentile(true, p), "/bin/true exec+exit")
    if agent_starts:
        for p, what in ((50, "p50"), (90, "p90")):
            row("exec -> READY=1, %s" % what, percentile(ready, p), percentile(agent_starts, p), "oidc-agent start")
    row("exec -> READY=1, mean", statistics.mean(ready), statistics.mean(true), "/bin/true exec+exit")


if __name__ == "__main__":
    main()
