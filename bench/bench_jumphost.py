#!/usr/bin/env python3
"""A jump host: N daemon processes (default 200), each with its own configuration, state
directory, socket and one profile, against one fake identity provider (its own process) with
short token lifetimes (default 60 s), for a few minutes. Reports the daemons' CPU share (sum of
utime+stime from /proc over the run, divided by wall time), the identity provider's (to say
whether it is the bottleneck), memory (sum of PSS; private dirty and anonymous memory), the
time to start all N from none running, refreshes, and missed refreshes: every token file is
read every second and any expired token on disk is a lapse.

With --oidc-agents M, M idle oidc-agent processes (each its own HOME and socket, no account
loaded) run beside the daemons in the same run, started the same way (all at once), and their
memory is measured at the same moment: the peer a person would otherwise leave running.

    python3 bench/bench_jumphost.py [--build DIR] [--daemons 200] [--lifetime 60] [--minutes 5]
        [--oidc-agents M] [--env NAME=VALUE ...] [--root /var/tmp]

Everything lives under one temporary directory in --root (default /var/tmp); every process
started is killed at the end, also when the run fails or is interrupted.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
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


def smaps_rollup(pid):
    """{field: KiB} of /proc/PID/smaps_rollup (Pss, Private_Dirty, Anonymous, ...)."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def memory(pids):
    """Sums over pids: Pss, Rss, Private_Dirty, Anonymous (KiB)."""
    tot = {"Pss": 0, "Rss": 0, "Private_Dirty": 0, "Anonymous": 0}
    for pid in pids:
        m = smaps_rollup(pid)
        for k in tot:
            tot[k] += m.get(k, 0)
    return tot


def descendants(pids):
    """pids and every process below them (oidc-agent runs as two)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    data = f.read()
            except OSError:
                continue
            children.setdefault(int(data[data.rindex(")") + 2:].split()[1]), []).append(int(name))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def answers_version(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(sock)
        s.sendall(b'{"op":"version"}\n')
        return b'"version"' in s.recv(4096)
    except OSError:
        return False
    finally:
        s.close()


class Interrupted(Exception):
    pass


def interrupted(signo, frame):
    raise Interrupted("signal %d" % signo)


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
    ap.add_argument("--oidc-agents", type=int, default=0)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for every daemon")
    ap.add_argument("--root", default="/var/tmp")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    benchlib.use_build(args.build)
    n = args.daemons
    extra_env = dict(e.split("=", 1) for e in args.env)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, interrupted)
    load_before = os.getloadavg()
    root = tempfile.mkdtemp(prefix="aksspark-bench-jump-", dir=args.root)
    daemons, agents = [], []
    idp = None
    try:
        idp = Idp(root, args.lifetime)
        idp.admin("set", auto_approve_user="user@contoso.com")

        # From none running to every socket answering: all spawned at once, as a reboot does.
        t_spawn = time.monotonic()
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
            env.update(extra_env)
            log = open(os.path.join(home, "log"), "wb")
            p = subprocess.Popen([harness.TOKEND, "--config", cfg] + (["--allow-root"] if harness.IS_ROOT else []),
                                 env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            daemons.append((p, home))
        pending = [os.path.join(h, "run", "sock") for _, h in daemons]
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if not (os.path.exists(s) and answers_version(s))]
            if pending:
                time.sleep(0.05)
        if pending:
            raise SystemExit("%d daemons did not answer within 300 s" % len(pending))
        start_wall = time.monotonic() - t_spawn

        # The peer, started the same way: every oidc-agent at once, each returns when it serves.
        agent_start_wall = None
        if args.oidc_agents:
            t_spawn = time.monotonic()
            procs = []
            for i in range(args.oidc_agents):
                ahome = os.path.join(root, "a%04d" % i)
                os.makedirs(ahome, mode=0o700)
                aenv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": ahome, "LANG": "C.UTF-8",
                        "TMPDIR": ahome}
                procs.append(subprocess.Popen(["oidc-agent", "-a", os.path.join(ahome, "sock"), "--json", "--quiet"],
                                              env=aenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              stdin=subprocess.DEVNULL, text=True))
            for p in procs:
                out, err = p.communicate(timeout=300)
                if p.returncode != 0:
                    raise SystemExit("oidc-agent: %s" % err)
                agents.append(int(json.loads(out)["dpid"]))
            agent_start_wall = time.monotonic() - t_spawn

        # Sign every daemon in (the idp approves on its own), 50 at a time; a sign-in that could
        # not reach the (Python, single-process) identity provider in time is tried again.
        todo = [h for _, h in daemons]
        for attempt in range(5):
            failed = []
            for k in range(0, len(todo), 50):
                batch = todo[k:k + 50]
                logins = [subprocess.Popen([harness.TOKENCTL, "--socket", os.path.join(h, "run", "sock"), "login"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for h in batch]
                for h, lp in zip(batch, logins):
                    _, err = lp.communicate(timeout=180)
                    if lp.returncode != 0:
                        failed.append((h, err.decode()))
            todo = [h for h, _ in failed]
            if not todo:
                break
        if todo:
            raise SystemExit("%d sign-ins failed, the last: %s" % (len(failed), failed[-1][1]))
        login_retries = attempt
        token_files = [os.path.join(h, "oauthToken") for _, h in daemons]
        harness.wait_until(lambda: all(os.path.exists(t) for t in token_files), 120, "every token file")

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
        mem = memory(pids)
        pss, rss = mem["Pss"], mem["Rss"]
        agent_pids = descendants(agents)
        agent_mem = memory(agent_pids) if agents else None
        load_after = os.getloadavg()
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
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p, _ in daemons:
            if p.poll() is None:
                p.kill()
        for p, _ in daemons:
            p.wait()
        agent_pids = descendants(agents)
        for pid in agent_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        harness.wait_until(lambda: not any(os.path.exists("/proc/%d" % pid) for pid in agent_pids), 30,
                           "the oidc-agents to go")
        if idp:
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
    print("load average (1, 5, 15 min): %.2f %.2f %.2f before, %.2f %.2f %.2f at the end"
          % (load_before + load_after))
    print("start of all %d from none running to every socket answering: %.2f s; sign-in rounds retried: %d"
          % (n, start_wall, login_retries))
    print("memory: sum of PSS %.1f MiB (%.0f KiB per daemon), sum of RSS %.1f MiB; per daemon: "
          "private dirty %.0f KiB, anonymous %.0f KiB"
          % (pss / 1024, pss / n, rss / 1024, mem["Private_Dirty"] / n, mem["Anonymous"] / n))
    if agent_mem:
        m = args.oidc_agents
        print("peer: %d idle oidc-agent (%d processes, no account loaded), started at once in %.2f s (daemons: "
              "%.2fx)" % (m, len(agent_pids), agent_start_wall, start_wall / agent_start_wall))
        print("peer memory: sum of PSS %.1f MiB (%.0f KiB per agent), sum of RSS %.1f MiB; per agent: private dirty "
              "%.0f KiB, anonymous %.0f KiB" % (agent_mem["Pss"] / 1024, agent_mem["Pss"] / m, agent_mem["Rss"] / 1024,
                                                 agent_mem["Private_Dirty"] / m, agent_mem["Anonymous"] / m))
        print("ratios, daemon / agent: PSS %.2fx, private dirty %.2fx, anonymous %.2fx"
              % (pss / n / (agent_mem["Pss"] / m), mem["Private_Dirty"] / n / (agent_mem["Private_Dirty"] / m),
                 mem["Anonymous"] / n / (agent_mem["Anonymous"] / m)))
    print("exit codes after SIGTERM: %s; secrets in daemon logs: %d" % (
        "all 0" if not any(exits) else sorted(set(exits)), leaked))
    for (i, _), (a, b, exp) in sorted(lapses.items(), key=lambda kv: kv[1][0])[:20]:
        print("  lapse: daemon %d, seen expired %.1f-%.1f s after exp" % (i, a - (exp or a), b - (exp or b)))


if __name__ == "__main__":
    main()
