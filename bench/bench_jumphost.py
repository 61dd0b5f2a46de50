#!/usr/bin/env python3
"""A jump host: N daemon processes (default 200), each with its own configuration, state
directory, socket and one profile, against one fake identity provider (its own process) with
short token lifetimes (default 60 s), for a few minutes. Reports the daemons' CPU share (sum of
utime+stime from /proc over the run, divided by wall time), the identity provider's (to say
whether it is the bottleneck), memory (sum of PSS), refreshes, and missed refreshes: every
token file is read every second and any expired token on disk is a lapse.

    python3 bench/bench_jumphost.py [--build DIR] [--daemons 200] [--lifetime 60] [--minutes 5]
"""

import argparse
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import SOURCE, common, harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def jwt_exp(token):
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
    except (IndexError, ValueError, KeyError):
        return None


class Idp:
    """The fake identity provider as its own process, driven over its admin endpoint."""

    def __init__(self, root, lifetime):
        self.dir = os.path.join(root, "idp")
        os.makedirs(self.dir)
        self.proc = subprocess.Popen([sys.executable, os.path.join(SOURCE, "tests", "idp", "fake_idp.py"),
                                      "--dir", self.dir, "--lifetime", str(lifetime)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError("fake idp did not start: %r" % line)
        self.url = line.split()[1]
        self.ca_file = os.path.join(self.dir, "ca.pem")
        self.ctx = ssl.create_default_context(cafile=self.ca_file)

    def admin(self, op, **args):
        req = urllib.request.Request("%s/_admin/%s" % (self.url, op), data=json.dumps(args).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("--daemons", type=int, default=200)
    ap.add_argument("--lifetime", type=int, default=60)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    benchlib.use_build(args.build)
    n = args.daemons
    root = tempfile.mkdtemp(prefix="aksspark-bench-jump-")
    idp = Idp(root, args.lifetime)
    idp.admin("set", auto_approve_user="user@contoso.com")
    daemons = []
    try:
        for i in range(n):
            home = os.path.join(root, "u%03d" % i)
            os.makedirs(os.path.join(home, "run"), mode=0o700)
            cfg = os.path.join(home, "config.ini")
            with open(cfg, "w") as f:
                f.write("[daemon]\nsocket = %s/run/sock\nstate_dir = %s/state\nlog_level = info\nhttp_timeout = 10s\n\n"
                        "[profile default]\ntenant = jump%03d.onmicrosoft.com\nauthority_host = %s\nca_file = %s\n"
                        "token_file = %s/oauthToken\n" % (home, home, i, idp.url, idp.ca_file, home))
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
                   "XDG_RUNTIME_DIR": os.path.join(home, "run")}
            log = open(os.path.join(home, "log"), "wb")
            p = subprocess.Popen([harness.TOKEND, "--config", cfg] + (["--allow-root"] if harness.IS_ROOT else []),
                                 env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            daemons.append((p, home))
        harness.wait_until(lambda: all(os.path.exists(os.path.join(h, "run", "sock")) for _, h in daemons), 60,
                           "every daemon's socket")
        # Sign every daemon in (the idp approves on its own), 50 at a time.
        for k in range(0, n, 50):
            logins = [subprocess.Popen([harness.TOKENCTL, "--socket", os.path.join(h, "run", "sock"), "login"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _, h in daemons[k:k + 50]]
            for lp in logins:
                _, err = lp.communicate(timeout=120)
                if lp.returncode != 0:
                    raise SystemExit("login failed: %s" % err.decode())
        token_files = [os.path.join(h, "oauthToken") for _, h in daemons]
        harness.wait_until(lambda: all(os.path.exists(t) for t in token_files), 60, "every token file")

        pids = [p.pid for p, _ in daemons]
        t0 = time.time()
        ticks0 = sum(common.proc_cpu_ticks(pid) for pid in pids)
        idp_ticks0 = common.proc_cpu_ticks(idp.proc.pid)
        lapses, reads, seen = {}, 0, [set() for _ in daemons]
        end = t0 + args.minutes * 60
        while time.time() < end:
            t_sweep = time.time()
            for i, path in enumerate(token_files):
                with open(path) as f:
                    token = f.read()
                reads += 1
                now = time.time()
                exp = jwt_exp(token)
                seen[i].add(token[-16:])
                if exp is None or exp <= now:
                    ep = lapses.setdefault((i, token[-16:]), [now, now, exp])
                    ep[1] = now
            time.sleep(max(0.0, 1.0 - (time.time() - t_sweep)))
        wall = time.time() - t0
        ticks = sum(common.proc_cpu_ticks(pid) for pid in pids) - ticks0
        idp_ticks = common.proc_cpu_ticks(idp.proc.pid) - idp_ticks0
        pss = sum(common.proc_pss_kib(pid) or 0 for pid in pids)
        rss = sum(common.proc_rss_kib(pid) or 0 for pid in pids)
        reqs = idp.admin("requests", endpoint="token")["requests"]
        window = [r for r in reqs if t0 <= r["t"] <= t0 + wall and r["grant_type"] == "refresh_token"]
        ok = [r for r in window if r["status"] == 200]
        # Secrets: none of the idp's in any daemon log.
        secrets = idp.admin("secrets")["secrets"]
        logs = ""
        for _, h in daemons:
            with open(os.path.join(h, "log"), errors="replace") as f:
                logs += f.read()
        leaked = sum(1 for s in secrets if s and s in logs)
        warnings = logs.count("refresh failed")
        exits = []
        for p, _ in daemons:
            p.send_signal(signal.SIGTERM)
        for p, _ in daemons:
            exits.append(p.wait(timeout=30))
    finally:
        for p, _ in daemons:
            if p.poll() is None:
                p.kill()
                p.wait()
        idp.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print("== jump host: %d daemons x 1 profile, token lifetime %d s, %.1f min" % (n, args.lifetime, wall / 60))
    print("machine: %s" % common.machine())
    print("command: %s" % " ".join(sys.argv))
    print("daemons' CPU: %.2f s over %.0f s wall = %.2f%% of one core (%.4f%% per daemon); per refresh %.2f ms"
          % (ticks / TICK, wall, 100 * ticks / TICK / wall, 100 * ticks / TICK / wall / n,
             1000 * ticks / TICK / max(1, len(ok))))
    print("fake idp's CPU (Python): %.2f s = %.2f%% of one core: %.1fx the daemons' together"
          % (idp_ticks / TICK, 100 * idp_ticks / TICK / wall, idp_ticks / max(1, ticks)))
    print("refreshes: %d answered 200 of %d requested (%.1f per daemon); distinct tokens seen per daemon: min %d"
          % (len(ok), len(window), len(ok) / n, min(len(s) for s in seen)))
    print("missed refreshes (an expired token on disk at a read): %d episodes over %d reads; %d 'refresh failed' log lines"
          % (len(lapses), reads, warnings))
    print("memory: sum of PSS %.1f MiB (%.0f KiB per daemon), sum of RSS %.1f MiB"
          % (pss / 1024, pss / n, rss / 1024))
    print("exit codes after SIGTERM: %s; secrets in daemon logs: %d" % (
        "all 0" if not any(exits) else sorted(set(exits)), leaked))
    for (i, _), (a, b, exp) in sorted(lapses.items(), key=lambda kv: kv[1][0])[:20]:
        print("  lapse: daemon %d, seen expired %.1f-%.1f s after exp" % (i, a - (exp or a), b - (exp or b)))


if __name__ == "__main__":
    main()
