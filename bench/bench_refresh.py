#!/usr/bin/env python3
"""One refresh by the daemon, from the `refresh` request on its socket to the new token on disk
(token file and spark.properties written atomically with fsync, refresh token stored first),
against the `curl` command line doing the same refresh-token POST to the same identity
provider over HTTPS (a new process, TLS handshake, request, answer on stdout; nothing saved).
From one run.

    python3 bench/bench_refresh.py [--build DIR] [-n 50]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import CLIENT_ID, SERVER_ID, harness, percentile, row  # noqa: E402

TENANT = "contoso.onmicrosoft.com"
SCOPE = "%s/.default openid profile offline_access" % SERVER_ID


class InodeWatcher(threading.Thread):
    """Polls a file's inode; each new inode (an atomic rename) is timestamped."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.changes = []
        self.stop_flag = threading.Event()

    def run(self):
        last = None
        while not self.stop_flag.is_set():
            try:
                ino = os.stat(self.path).st_ino
            except OSError:
                ino = None
            if ino != last:
                if last is not None and ino is not None:
                    self.changes.append(time.perf_counter())
                last = ino
            time.sleep(0.0001)


def device_sign_in(idp):
    """A refresh token for curl, got with the device flow (the idp approves on its own)."""
    ctx = ssl.create_default_context(cafile=idp.ca_file)
    base = "%s/%s/oauth2/v2.0/" % (idp.url, TENANT)

    def post(endpoint, form):
        req = urllib.request.Request(base + endpoint, data=urllib.parse.urlencode(form).encode())
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    dc = post("devicecode", {"client_id": CLIENT_ID, "scope": SCOPE})
    while True:
        time.sleep(1.05)
        t = post("token", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                           "client_id": CLIENT_ID, "device_code": dc["device_code"]})
        if "refresh_token" in t:
            return t["refresh_token"]
        if t.get("error") != "authorization_pending":
            raise RuntimeError(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("-n", type=int, default=50)
    args = ap.parse_args()
    benchlib.use_build(args.build)
    with harness.Env(prefix="aksspark-bench-refresh-") as env:
        idp = env.start_idp(lifetime=3600)
        token_file = env.path("out", "oauthToken")
        props = env.path("out", "spark.properties")
        env.write_config(profiles={"default": {"tenant": TENANT, "token_file": token_file,
                                               "spark_properties": props}},
                         daemon={"log_level": "warning"})
        d = env.start_daemon()
        d.sign_in(idp)
        idp.set(auto_approve_user="bob@contoso.com")
        rt = device_sign_in(idp)

        w = InodeWatcher(token_file)
        w.start()
        time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket_path)
        f = s.makefile("rb")
        to_disk, to_answer = [], []
        for i in range(args.n + 5):
            before = len(w.changes)
            t0 = time.perf_counter()
            s.sendall(b'{"op":"refresh"}\n')
            a = json.loads(f.readline())
            t1 = time.perf_counter()
            if not a.get("ok"):
                raise SystemExit("refresh failed: %s" % a)
            harness.wait_until(lambda: len(w.changes) > before, 5, "the new token on disk", interval=0.0005)
            if i >= 5:   # the first few warm up
                to_disk.append(w.changes[before] - t0)
                to_answer.append(t1 - t0)
        s.close()
        w.stop_flag.set()

        url = "%s/%s/oauth2/v2.0/token" % (idp.url, TENANT)
        curl = []
        for i in range(args.n + 5):
            argv = ["curl", "-s", "--cacert", idp.ca_file, "-d", "grant_type=refresh_token",
                    "-d", "client_id=" + CLIENT_ID, "--data-urlencode", "scope=" + SCOPE,
                    "--data-urlencode", "refresh_token=" + rt, url]
            t0 = time.perf_counter()
            p = subprocess.run(argv, capture_output=True, text=True)
            took = time.perf_counter() - t0
            answer = json.loads(p.stdout)
            if "access_token" not in answer:
                raise SystemExit("curl refresh failed: %s" % answer.get("error"))
            rt = answer["refresh_token"]
            if i >= 5:
                curl.append(took)
        d.stop()

    benchlib.header("one refresh: request to new token on disk, vs curl doing the same POST (%d each)" % args.n)
    for p, what in ((50, "p50"), (90, "p90")):
        row("refresh -> new token file on disk, %s" % what, percentile(to_disk, p), percentile(curl, p), "curl command line")
    row("refresh -> new token file on disk, mean", statistics.mean(to_disk), statistics.mean(curl), "curl command line")
    row("refresh -> answer on the socket, p50", percentile(to_answer, 50), percentile(curl, 50), "curl command line")
    print("(the daemon's side includes the TLS handshake (the fake closes every connection), two atomic "
          "writes with fsync of file and directory, and the state store; curl's saves nothing)")


if __name__ == "__main__":
    main()
