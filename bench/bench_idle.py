#!/usr/bin/env python3
"""Idle wake-ups over a window (default 60 s): the daemon with a signed-in profile whose token
lives an hour (no refresh falls in the window), without and with a systemd watchdog
(WATCHDOG_USEC=20s), against oidc-agent holding a loaded account, all measured at once.

Two counts per process: completed waiting syscalls seen by `strace -f` (epoll_wait,
epoll_pwait, poll, ppoll, select, pselect6, nanosleep, clock_nanosleep: each return is a
wake-up), and context switches from /proc/PID/status (voluntary + involuntary, every thread),
which needs no tracer.

    python3 bench/bench_idle.py [--build DIR] [--seconds 60]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import harness  # noqa: E402

WAITS = "epoll_wait,epoll_pwait,poll,ppoll,select,pselect6,nanosleep,clock_nanosleep"


def ctxt_switches(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def syscalls(path, skip):
    """The completed syscalls in an strace -f log after its first skip lines: (all, waits, names)."""
    names = {}
    with open(path) as f:
        lines = f.readlines()[skip:]
    for line in lines:
        if "<unfinished ...>" in line or line.startswith(("+++", "---")) or " +++" in line or " --- " in line:
            continue
        body = line.split(None, 1)[1] if line[:1].isdigit() else line
        if "resumed>" in body:
            name = body.split("<...", 1)[1].split()[0] if "<..." in body else "?"
        else:
            name = body.split("(", 1)[0].strip()
        names[name] = names.get(name, 0) + 1
    waits = sum(v for k, v in names.items() if k in WAITS.split(","))
    return sum(names.values()), waits, names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    benchlib.use_build(args.build)
    if not shutil.which("strace"):
        sys.exit("needs strace (apt-get install strace)")
    with harness.Env(prefix="aksspark-bench-idle-") as env:
        idp = env.start_idp(lifetime=3600)
        env.write_config(daemon={"log_level": "info"})
        d = env.start_daemon()
        d.sign_in(idp)
        # A second daemon, its own state and socket, with a 20 s watchdog.
        env2 = os.path.join(env.root, "wd")
        os.makedirs(env2)
        cfg2 = os.path.join(env2, "config.ini")
        with open(env.config_path) as f:
            text = f.read().replace(env.socket_path, os.path.join(env2, "sock")).replace(env.state, os.path.join(env2, "state"))
        with open(cfg2, "w") as f:
            f.write(text)
        saved_socket = env.socket_path
        env.socket_path = os.path.join(env2, "sock")
        d2 = env.start_daemon(config=cfg2, env={"WATCHDOG_USEC": "20000000"})
        env.socket_path = saved_socket
        d2.sign_in(idp)
        idp.set(auto_approve_user="alice@contoso.com")
        agent = benchlib.OidcAgent(env.root, idp)
        agent.start()
        try:
            agent.generate()
            subprocess.run(agent.token_argv(), env=agent.env, capture_output=True, check=True)
            time.sleep(2)   # let every process settle after its last request
            procs = {"aksspark-tokend": [d.pid], "aksspark-tokend (WatchdogSec=20s)": [d2.pid],
                     "oidc-agent (2 processes)": agent.pids()}
            # Window 1, no tracer: context switches of every thread (a tracer would add its own).
            cs0 = {name: sum(ctxt_switches(pid) for pid in pids) for name, pids in procs.items()}
            requests0 = len(idp.requests())
            time.sleep(args.seconds)
            cs = {name: sum(ctxt_switches(pid) for pid in pids) - cs0[name] for name, pids in procs.items()}
            # Window 2: every syscall under strace -f; the waiting ones are the wake-ups.
            tracers = {}
            for name, pids in procs.items():
                out = os.path.join(env.root, "strace-%d" % pids[0])
                argv = ["strace", "-f", "-qq", "-o", out]
                for pid in pids:
                    argv += ["-p", str(pid)]
                tracers[name] = (subprocess.Popen(argv, stderr=subprocess.DEVNULL), out)
            time.sleep(1.0)   # attached; what the attach itself interrupts is dropped below
            marks = {name: count_lines(out) for name, (p, out) in tracers.items()}
            time.sleep(args.seconds)
            for name, (p, out) in tracers.items():
                p.terminate()
                p.wait()
            calls = {name: syscalls(out, marks[name]) for name, (p, out) in tracers.items()}
            requests = len(idp.requests()) - requests0
            watchdogs = d2.notify.fields("WATCHDOG").count("1")
        finally:
            agent.stop()
        d.stop()
        d2.stop()

    print("== idle wake-ups, two windows of %.0f s each (token lifetime 1 h, nothing due)" % args.seconds)
    print("machine: %s" % benchlib.common.machine())
    print("command: %s" % " ".join(sys.argv))
    for name in procs:
        total, waits, names = calls[name]
        print("%-36s context switches %4d | syscalls %4d, of which waits returning %4d  %s"
              % (name, cs[name], total, waits, json.dumps(names, sort_keys=True)))
    ours, peer = cs["aksspark-tokend"], cs["oidc-agent (2 processes)"]
    print("ratio, context switches aksspark-tokend / oidc-agent: %s" % ("%.2fx" % (ours / peer) if peer else
                                                                      "%d vs %d" % (ours, peer)))
    print("(requests to the identity provider during both windows: %d; WATCHDOG=1 sent by the watchdog daemon "
          "over its life: %d)" % (requests, watchdogs))


if __name__ == "__main__":
    main()
