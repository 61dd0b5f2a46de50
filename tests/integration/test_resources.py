"""Leaks and resources of the real daemon: under valgrind through sign-ins, refreshes, reloads,
every socket op (good and bad), faults and a SIGTERM with work in flight (no leak, no invalid
access, no fd left open); and, without valgrind, file descriptors and memory after 10,000
socket requests and 1,000 refreshes equal to those after warm-up."""

import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
from common import FAULT_KINDS, ResourceSampler, built_with_sanitizers, proc_rss_kib  # noqa: E402
from harness import Env, wait_until  # noqa: E402

USER = "dave@contoso.com"
VALGRIND = shutil.which("valgrind")

RSS_SLACK_KIB = 512

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: aks
  cluster:
    server: https://aks.example.test:443
contexts:
- name: aks
  context: {cluster: aks, user: u}
current-context: aks
users:
- name: u
  user: {}
"""


def exchange(path, lines, timeout=60):
    """Send lines (bytes each, newline added) on one connection, pipelined; read one answer
    per line. Returns the decoded answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"".join(l + b"\n" for l in lines))
        f = s.makefile("rb")
        return [json.loads(f.readline()) for _ in lines]


def refreshes(idp, since=0.0):
    return [r for r in idp.requests("token") if r["t"] >= since and r["grant_type"] == "refresh_token"
            and r["status"] == 200 and not r["fault"]]


def socket_workout(d, profiles, n_status=200):
    """Every op, good and bad, on fresh and pipelined connections; returns the answers checked."""
    path = d.socket_path
    answers = []
    reqs = [{"op": "status"}, {"op": "profiles"}, {"op": "token"}, {"op": "version"},
            {"op": "check", "min_valid": 1}, {"op": "nope"}, {"op": "status", "profile": "nobody"},
            {"op": 7}, {"no": "op"}]
    for p in profiles:
        reqs += [{"op": "status", "profile": p}, {"op": "token", "profile": p}]
    answers += exchange(path, [json.dumps(r).encode() for r in reqs])
    answers += exchange(path, [b"{not json", b"[]", b'"str"', b"{}", "{\"op\":\"status\",\"x\":\"\u00e9\"}".encode()])
    answers += exchange(path, [json.dumps({"op": "status"}).encode()] * n_status)
    # Over 64 KiB: an error answer, then the connection is closed.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        try:
            s.sendall(b'{"op":"status","pad":"' + b"x" * 70000 + b'"}\n')
        except OSError:
            pass
        f = s.makefile("rb")
        line = f.readline()
        if line:
            answers.append(json.loads(line))
    # Half a request, then gone; a refresh request, then gone before the answer.
    for data in (b'{"op":"sta', b'{"op":"refresh"}\n'):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(data)
        s.close()
    for a in answers:
        if not isinstance(a, dict) or "ok" not in a:
            raise AssertionError("answer without ok: %r" % (a,))
    return answers


class ValgrindTest(unittest.TestCase):
    # In a sanitizer build the same workout runs without valgrind (the two cannot be combined):
    # ASan/UBSan abort on an invalid access and LeakSanitizer on a leak at exit, so a clean
    # exit status is the verdict there.
    @unittest.skipUnless(VALGRIND or built_with_sanitizers(), "valgrind is not installed (apt-get install valgrind)")
    def test_no_leak_no_invalid_access_no_fd_left(self):
        sanitized = built_with_sanitizers()
        # Under valgrind or ASan a first TLS handshake alone can take seconds on a busy machine:
        # the exchange limit must be generous, or the test measures the machine's load.
        http_timeout = "10s"
        with Env() as env:
            idp = env.start_idp(lifetime=6)
            kubeconfig = env.path("kubeconfig")
            with open(kubeconfig, "w") as f:
                f.write(KUBECONFIG)
            env.write_config(profiles={
                "default": {"token_file": env.path("out", "token"),
                            "spark_properties": env.path("out", "spark.properties"),
                            "kubeconfig": kubeconfig},
                "second": {"token_file": env.path("out", "second-token")},
                "third": {"token_file": env.path("out", "third-token")},
            }, daemon={"http_timeout": http_timeout, "log_level": "debug"})
            vg_log = env.path("valgrind.log")
            d = env.start_daemon(wait=False, prefix=[] if sanitized else [
                VALGRIND, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect", "--error-exitcode=99", "--track-fds=yes",
                "--num-callers=30", "--log-file=" + vg_log])
            d.wait_ready(timeout=90)
            d.sign_in(idp, user=USER, profile="default", timeout=90)
            d.sign_in(idp, user="erin@contoso.com", profile="second", timeout=90)
            t0 = time.time()
            wait_until(lambda: len(refreshes(idp, t0)) >= 4, 60, "natural refreshes")

            # Every fault kind on a forced refresh: each fails and is retried later.
            for kind in FAULT_KINDS:
                idp.queue_fault(kind, endpoint="token", retry_after=1 if kind in ("429", "503") else None,
                                user="erin@contoso.com")
                r = d.ctl("--profile", "second", "refresh", timeout=60)
                self.assertEqual(r.returncode, 1, "%s: %s" % (kind, r.stderr))
            r = d.ctl("--profile", "second", "refresh", timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)

            answers = socket_workout(d, ["default", "second", "third"])
            self.assertTrue(any(a.get("error") == "unknown_op" for a in answers))
            self.assertTrue(any(a.get("error") == "bad_request" for a in answers))
            self.assertTrue(any(a.get("error") == "unknown_profile" for a in answers))
            for args in (["exec-credential"], ["status"], ["profiles"], ["check", "--min-valid", "1s"]):
                self.assertEqual(d.ctl(*args, timeout=60).returncode, 0, args)

            # A sign-in abandoned by its client, one that completes, then a logout.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket_path)
            s.sendall(b'{"op":"login","profile":"third"}\n')
            s.settimeout(60)
            self.assertIn(b"user_code", s.makefile("rb").readline())
            s.close()
            # The daemon goes on polling for the abandoned sign-in; a person approves it later.
            code = wait_until(idp.pending_device_codes, 30, "the abandoned sign-in's code")[0]
            idp.approve(code, user="frank@contoso.com")
            wait_until(lambda: d.request({"op": "status", "profile": "third"}, timeout=60)["state"] == "valid",
                       60, "the third profile signed in")
            self.assertEqual(d.ctl("--profile", "third", "logout", timeout=60).returncode, 0)

            # Reloads: by request and by SIGHUP, with a profile dropped and one changed.
            env.write_config(profiles={
                "default": {"token_file": env.path("out", "token"),
                            "spark_properties": env.path("out", "spark.properties"),
                            "kubeconfig": kubeconfig, "refresh_before": "2s"},
                "second": {"token_file": env.path("out", "second-token")},
            }, daemon={"http_timeout": http_timeout, "log_level": "debug"})
            self.assertTrue(d.request({"op": "reload"}, timeout=60)["ok"])
            d.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: d.notify.fields("RELOADING").count("1") >= 2, 30, "two reloads")
            wait_until(lambda: d.request({"op": "status"}, timeout=60)["state"] == "valid", 30, "valid after reload")
            t1 = time.time()
            wait_until(lambda: len(refreshes(idp, t1)) >= 2, 60, "refreshes after the reload")

            # Stop with work in flight: a hung refresh and a sign-in waiting for a person.
            self.assertEqual(d.ctl("logout", timeout=60).returncode, 0)
            pending = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            pending.settimeout(60)
            pending.connect(d.socket_path)
            pending.sendall(b'{"op":"login"}\n')
            self.assertIn(b"user_code", pending.makefile("rb").readline())
            idp.queue_fault("hang", endpoint="token")
            hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            hung.connect(d.socket_path)
            hung.sendall(b'{"op":"refresh","profile":"second"}\n')
            wait_until(lambda: any(r["fault"] == "hang" for r in idp.requests("token")), 30, "the hang")
            stop_error = None
            try:
                d.stop(timeout=60)
            except AssertionError as e:
                stop_error = str(e)[:300]
            hung.close()
            pending.close()

            if sanitized:
                self.assertIsNone(stop_error, d.log()[-4000:])
                self.assertNotIn("ERROR: AddressSanitizer", d.log())
                self.assertNotIn("ERROR: LeakSanitizer", d.log())
                self.assertNotIn("runtime error:", d.log())
                return
            with open(vg_log) as f:
                text = f.read()
            first = text.find("== Invalid") if "== Invalid" in text else text.find("are definitely lost")
            self.assertTrue("ERROR SUMMARY: 0 errors" in text, "valgrind found errors; the first:\n%s\n...\n%s"
                            % (text[max(0, first - 100):first + 5000], text[-1500:]))
            self.assertIsNone(stop_error)
            self.assertNotIn("definitely lost: ", text.replace("definitely lost: 0 bytes", ""), text[-6000:])
            # --track-fds: at exit only what the daemon inherited may be open.
            fds = [l for l in text.splitlines() if "Open file descriptor" in l or "Open AF_" in l]
            summary = [l for l in text.splitlines() if "FILE DESCRIPTORS:" in l]
            self.assertTrue(summary, text[-3000:])
            opened = [l for l in text.split("FILE DESCRIPTORS:")[-1].split("\n\n")
                      if ("Open " in l and "<inherited from parent>" not in l)]
            self.assertEqual(opened, [], "fds left open at exit:\n%s\n%s" % ("\n".join(fds), "\n".join(opened)))


class ResourcesTest(unittest.TestCase):
    def test_fds_and_memory_flat_after_10000_requests_and_1000_refreshes(self):
        profiles = ["p%d" % i for i in range(8)]
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            env.write_config(profiles={p: {"token_file": env.path("out", p, "token"),
                                           "spark_properties": env.path("out", p, "spark.properties")}
                                       for p in profiles},
                             daemon={"http_timeout": "5s", "log_level": "info"})
            d = env.start_daemon()
            for p in profiles:
                d.sign_in(idp, user=USER, profile=p)

            def forced_refreshes(n_per_profile):
                errors = []

                def worker(p):
                    try:
                        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                            s.settimeout(60)
                            s.connect(d.socket_path)
                            f = s.makefile("rb")
                            line = json.dumps({"op": "refresh", "profile": p}).encode() + b"\n"
                            for _ in range(n_per_profile):
                                s.sendall(line)
                                a = json.loads(f.readline())
                                if not a.get("ok") or a.get("state") != "valid":
                                    errors.append(a)
                    except Exception as e:  # noqa: BLE001 - reported below
                        errors.append(repr(e))
                threads = [threading.Thread(target=worker, args=(p,)) for p in profiles]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                self.assertEqual(errors, [])

            def requests(n):
                """n socket requests: every op and malformed ones, pipelined status, and the
                rest one request per fresh connection."""
                done = len(socket_workout(d, profiles[:2], n_status=100))
                while done < n // 2:
                    done += len(exchange(d.socket_path, [b'{"op":"status","profile":"p1"}'] * 500))
                for i in range(n - done):
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.settimeout(30)
                        s.connect(d.socket_path)
                        s.sendall(b'{"op":"%s","profile":"%s"}\n' % (
                            (b"status", b"token", b"check", b"profiles")[i % 4], profiles[i % len(profiles)].encode()))
                        if not s.makefile("rb").readline():
                            raise AssertionError("no answer")

            def settled_sample(sampler):
                time.sleep(0.3)
                before = len(sampler.samples)
                wait_until(lambda: len(sampler.samples) >= before + 6, 10, "resource samples")
                return sampler.samples[-6:]

            sampler = ResourceSampler(d.pid, interval=0.1)
            sampler.start()
            # Warm-up: every code path once, caches and pools at their working size.
            forced_refreshes(20)
            requests(1000)
            warm = settled_sample(sampler)
            warm_fds, warm_rss = sampler.persistent(warm), min(s[1] for s in warm)

            t0 = time.time()
            forced_refreshes(125)
            requests(10000)
            n_refreshes = len(refreshes(idp, t0))
            self.assertGreaterEqual(n_refreshes, 1000)
            end = settled_sample(sampler)
            sampler.stop()
            end_fds, end_rss = sampler.persistent(end), min(s[1] for s in end)
            print("\nafter warm-up: %d fds, VmRSS %d KiB; after %d refreshes and 10,000 requests: "
                  "%d fds, VmRSS %d KiB (%+d KiB); RSS now %d KiB" % (
                      len(warm_fds), warm_rss, n_refreshes, len(end_fds), end_rss, end_rss - warm_rss,
                      proc_rss_kib(d.pid)), file=sys.stderr)
            self.assertEqual(end_fds, warm_fds)
            if not built_with_sanitizers():   # ASan's quarantine keeps freed memory by design
                self.assertLessEqual(end_rss - warm_rss, RSS_SLACK_KIB)
            self.assertEqual(end[-1][3], 0, "a TCP connection is still open")
            d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
