"""Shared pieces of the benchmarks in bench/: the build and harness, the machine line, a table
row printer (ours, the peer, the ratio), and oidc-agent set up non-interactively against the
fake identity provider. Python 3 standard library only."""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "soak"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "idp"))

import common  # noqa: E402  (tests/soak/common.py: /proc samplers, machine())
import fake_idp  # noqa: E402
import harness  # noqa: E402

CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"


def use_build(build=None):
    build = os.path.abspath(build or os.environ.get("AKSSPARK_BUILD_DIR") or os.path.join(SOURCE, "build"))
    harness.BUILD = build
    harness.TOKEND = os.path.join(build, "aksspark-tokend")
    harness.TOKENCTL = os.path.join(build, "aksspark-tokenctl")
    for p in (harness.TOKEND, harness.TOKENCTL):
        if not os.path.exists(p):
            sys.exit("no %s: build first (meson setup build && ninja -C build)" % p)
    return build


def header(title, argv=None):
    print("== %s" % title)
    print("machine: %s" % common.machine())
    print("command: %s" % " ".join(argv or sys.argv))
    print("%-52s %16s   %-22s %16s   %s" % ("measure", "aksspark-tokend", "peer", "", "ratio"))


def ms(x):
    return "%.3f ms" % (x * 1000)


def row(what, ours, peer, peer_name, fmt=ms, note=""):
    """One line: ours, the peer's, and ours / peer (for a time: how many times slower)."""
    ratio = ours / peer if peer else float("nan")
    print("%-52s %16s   %-22s %16s   %7.2fx %s" % (what, fmt(ours), peer_name, fmt(peer), ratio, note))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100.0))]


def spawn_times(argv, n, env=None, expect=0):
    """n runs of a process; seconds each (fork/exec/wait, as a caller pays it)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        out.append(time.perf_counter() - t0)
        if expect is not None and p.returncode != expect:
            raise RuntimeError("%s exited %d" % (" ".join(argv), p.returncode))
    return out


# ---- oidc-agent against the fake identity provider ------------------------------------------

_patched = False


def accept_client_secret_basic():
    """oidc-agent sends its client id as HTTP Basic credentials (client_secret_basic), which
    Azure AD accepts for a confidential client; the fake only reads client_id from the form.
    For the benchmarks (only), copy the Basic user name into the form when it has none."""
    global _patched
    if _patched:
        return
    original = fake_idp._Handler._read_body

    def read_body(self):
        body = original(self)
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic " and b"client_id=" not in body:
            user = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace").split(":", 1)[0]
            body += (b"&" if body else b"") + b"client_id=" + urllib.parse.quote(urllib.parse.unquote(user)).encode()
        return body

    fake_idp._Handler._read_body = read_body
    _patched = True


class OidcAgent:
    """An oidc-agent (its own HOME and socket) with one account configured by oidc-gen's device
    flow against idp (which must auto-approve: idp.set(auto_approve_user=...))."""

    def __init__(self, root, idp, account="bench", tenant="contoso.onmicrosoft.com"):
        if not shutil.which("oidc-agent"):
            raise RuntimeError("oidc-agent is not installed (apt-get install oidc-agent-cli)")
        accept_client_secret_basic()
        self.root = root
        self.account = account
        self.home = os.path.join(root, "oidc-home")
        os.makedirs(self.home, exist_ok=True)
        self.sock = os.path.join(root, "oidc-agent.sock")
        self.env = dict(os.environ, HOME=self.home, OIDC_SOCK=self.sock, OIDC_ENCRYPTION_PW="bench-pw")
        self.env.pop("OIDCD_PID", None)
        self.pid = None
        self.idp = idp
        self.tenant = tenant

    def start(self):
        """Start the agent (it daemonizes and prints its pid); returns seconds to a usable socket."""
        t0 = time.perf_counter()
        p = subprocess.run(["oidc-agent", "-a", self.sock, "--json", "--quiet"], env=self.env,
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("oidc-agent: %s" % p.stderr)
        took = time.perf_counter() - t0
        self.pid = int(json.loads(p.stdout)["dpid"])
        return took

    def generate(self):
        """oidc-gen with the device flow; the idp approves at once."""
        iss = "%s/%s/v2.0" % (self.idp.url, self.tenant)
        p = subprocess.run(["oidc-gen", "--iss=" + iss, "--client-id=" + CLIENT_ID, "--client-secret=",
                            "--flow=device", "--scope=openid profile offline_access %s/.default" % SERVER_ID,
                            "--cp=" + self.idp.ca_file, "--pw-env", "--confirm-default", "--prompt=none",
                            "--no-url-call", self.account],
                           env=self.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError("oidc-gen failed (%d): %s" % (p.returncode, (p.stdout + p.stderr)[-800:]))
        t = subprocess.run(self.token_argv(), env=self.env, capture_output=True, text=True, timeout=30)
        if t.returncode != 0 or not self.idp.token_is_valid(t.stdout.strip()):
            lines = [l for l in (p.stdout + p.stderr).splitlines() if "\x1b[" not in l]
            raise RuntimeError("oidc-gen made no usable account: %s / oidc-token: %s"
                               % ("\n".join(lines[-8:]), t.stderr.strip()))

    def pids(self):
        """The agent and every process under it (it runs as two: the agent and a child)."""
        children = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open("/proc/%s/stat" % name) as f:
                        data = f.read()
                except OSError:
                    continue
                ppid = int(data[data.rindex(")") + 2:].split()[1])
                children.setdefault(ppid, []).append(int(name))
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    def token_argv(self):
        return ["oidc-token", self.account]

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            self.pid = None
