"""The socket protocol against the real daemon: every op and error code, the peer check, line
framing (oversized, invalid, half-sent and pipelined requests), clients that vanish while they
wait, backpressure, the connection cap, 1,000 concurrent clients while a refresh hangs, the
socket file's life and a socket passed in by systemd."""

import json
import os
import resource
import selectors
import socket
import subprocess
import time
import unittest

import harness
from harness import Env, wait_until

OTHER_USER = "aksspark-it"
MAX_REQUEST = 64 * 1024
MAX_CONNECTIONS = 4096


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Conn:
    """One raw connection: send bytes, read answer lines with a deadline."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        if isinstance(data, dict):
            data = json.dumps(data) + "\n"
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self, timeout=10):
        """The next answer line (bytes without '\\n'); None if the daemon closed first."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no answer within %ss" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def answer(self, timeout=10):
        line = self.line(timeout)
        if line is None:
            raise AssertionError("the daemon closed the connection without answering")
        a = json.loads(line)
        assert isinstance(a, dict) and isinstance(a.get("ok"), bool), a
        return a

    def closed_by_daemon(self, timeout=10):
        """True once the daemon closes its side (nothing more to read)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def nothing_within(self, seconds):
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return True
        self.buf += data
        return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def assert_error(test, answer, code):
    test.assertFalse(answer["ok"], answer)
    test.assertEqual(answer["error"], code, answer)
    test.assertIsInstance(answer["message"], str)
    test.assertTrue(answer["message"])


def signed_in_daemon(env, lifetime=600, **config):
    idp = env.start_idp(lifetime=lifetime)
    env.write_config(**config)
    d = env.start_daemon()
    d.sign_in(idp)
    wait_until(lambda: d.status()["state"] == "valid", 10, "state valid")
    return idp, d


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100.0))]


class OpsTest(unittest.TestCase):
    def test_every_op(self):
        with Env() as env:
            idp = env.start_idp(lifetime=600)
            env.write_config()
            d = env.start_daemon()

            # Before a sign-in.
            st = d.request({"op": "status"})
            self.assertTrue(st["ok"])
            for key in ("profile", "state", "expires_on", "expires_in", "next_refresh", "last_refresh",
                        "last_error", "account", "tenant", "outputs"):
                self.assertIn(key, st)
            self.assertEqual(st["profile"], "default")
            self.assertEqual(st["state"], "login_required")
            self.assertIsNone(st["expires_on"])
            self.assertEqual([o["path"] for o in st["outputs"]], [os.path.join(env.home, ".kube", "oauthToken")])
            assert_error(self, d.request({"op": "token"}), "login_required")
            assert_error(self, d.request({"op": "refresh"}), "login_required")
            assert_error(self, d.request({"op": "check", "min_valid": 60}), "login_required")
            a = d.request({"op": "profiles"})
            self.assertEqual(a, {"ok": True, "profiles": [
                {"name": "default", "state": "login_required", "expires_on": None, "account": None}]})
            v = d.request({"op": "version"})
            p = subprocess.run([harness.TOKEND, "--version"], capture_output=True, text=True)
            self.assertEqual(p.stdout.split()[-1], v["version"])

            # login: the device message first, the outcome when the person approved.
            with Conn(d.socket_path) as c:
                c.send({"op": "login"})
                first = c.answer(timeout=20)
                self.assertTrue(first["ok"], first)
                for key in ("device_message", "verification_uri", "user_code", "expires_in"):
                    self.assertIn(key, first)
                self.assertIn(first["user_code"], first["device_message"])
                self.assertIn(first["user_code"], idp.pending_device_codes())
                self.assertGreater(first["expires_in"], 0)
                # status shows the device message while the sign-in waits.
                self.assertEqual(d.status()["device_message"], first["device_message"])
                self.assertTrue(c.nothing_within(0.3), "the outcome came before the approval")
                idp.approve(first["user_code"], user="bob@contoso.com")
                second = c.answer(timeout=20)
            self.assertTrue(second["ok"], second)
            self.assertEqual(second["state"], "valid")
            self.assertEqual(second["account"], "bob@contoso.com")
            self.assertIsNone(second["device_message"])

            st = d.status()
            self.assertEqual(st["state"], "valid")
            self.assertGreater(st["expires_in"], 500)
            self.assertLessEqual(st["expires_in"], 600)
            self.assertAlmostEqual(st["expires_on"] - time.time(), st["expires_in"], delta=3)
            self.assertTrue(st["outputs"][0]["ok"])
            self.assertIsNotNone(st["outputs"][0]["last_write"])
            self.assertIsNotNone(st["next_refresh"])
            self.assertGreater(st["next_refresh"], time.time())

            t = d.request({"op": "token"})
            self.assertTrue(t["ok"])
            self.assertEqual(set(t), {"ok", "access_token", "expires_on"})
            self.assertTrue(idp.token_is_valid(t["access_token"]))
            self.assertEqual(t["expires_on"], st["expires_on"])
            with open(os.path.join(env.home, ".kube", "oauthToken")) as f:
                self.assertEqual(f.read(), t["access_token"])

            # refresh: a new token, answered as status.
            r = d.request({"op": "refresh"}, timeout=30)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["state"], "valid")
            t2 = d.request({"op": "token"})
            self.assertNotEqual(t2["access_token"], t["access_token"])
            self.assertTrue(idp.token_is_valid(t2["access_token"]))

            # check: at once when long enough (no new request at the identity provider) ...
            n = len(idp.requests("token"))
            c = d.request({"op": "check", "min_valid": 60})
            self.assertTrue(c["ok"], c)
            self.assertEqual(c["state"], "valid")
            self.assertEqual(len(idp.requests("token")), n)
            # ... after a refresh when not, which fails when even a new token is too short.
            c = d.request({"op": "check", "min_valid": 3600}, timeout=30)
            assert_error(self, c, "refresh_failed")
            self.assertEqual(len(idp.requests("token")), n + 1)

            # reload: ok; a broken file is refused with its problems and the old one stays.
            self.assertEqual(d.request({"op": "reload"}), {"ok": True})
            with open(env.config_path, "a") as f:
                f.write("bogus_key = 1\n")
            a = d.request({"op": "reload"})
            assert_error(self, a, "reload_failed")
            self.assertIn("bogus_key", a["message"])
            self.assertIn(env.config_path, a["message"])
            self.assertEqual(d.status()["state"], "valid")

            # logout: the refresh token is forgotten.
            a = d.request({"op": "logout"})
            self.assertTrue(a["ok"], a)
            self.assertEqual(a["state"], "login_required")
            assert_error(self, d.request({"op": "refresh"}), "login_required")
            d.stop()

    def test_error_codes(self):
        with Env() as env:
            env.start_idp(lifetime=600)
            env.write_config(profiles={"default": {}, "prod": {"token_file": env.path("prod-token")}})
            d = env.start_daemon()
            assert_error(self, d.request({"op": "frobnicate"}), "unknown_op")
            a = d.request({"op": "status", "profile": "nope"})
            assert_error(self, a, "unknown_profile")
            self.assertIn("default", a["message"])
            self.assertIn("prod", a["message"])
            self.assertEqual(d.request({"op": "status", "profile": "prod"})["profile"], "prod")
            for bad in ('{"op": "status"', "[1, 2]", '"status"', "{}", '{"op": 5}', '{"op": "status", "profile": 5}',
                        '{"op": "status", "profile": "a b"}', '{"op": "check", "min_valid": -1}',
                        '{"op": "check", "min_valid": "15m"}', '{"op": "check", "min_valid": 1.5}',
                        '{"op": "status", "op": "token"}', '{"op": "check", "min_valid": 1e999}',
                        '{"op": "check", "min_valid": 123456789012345678901234567890}'):
                a = d.request(bad)
                assert_error(self, a, "bad_request")
                self.assertNotIn("a b", a["message"])  # the input is never echoed
            # Several profiles, none named default in this one: the request must name one.
            env.write_config(profiles={"one": {}, "two": {"token_file": env.path("two-token")}})
            self.assertEqual(d.request({"op": "reload"}), {"ok": True})
            a = d.request({"op": "status"})
            assert_error(self, a, "unknown_profile")
            self.assertIn("one", a["message"])
            d.stop()

    def test_refresh_failed_and_output_failed(self):
        with Env() as env:
            blocker = env.path("not-a-dir")
            with open(blocker, "w") as f:
                f.write("x")
            idp, d = signed_in_daemon(env, profiles={"default": {}, "broken": {
                "token_file": os.path.join(blocker, "token")}})
            idp.queue_fault("500", count=20)
            a = d.request({"op": "refresh"}, timeout=30)
            assert_error(self, a, "refresh_failed")
            self.assertIn("500", a["message"])
            idp.clear_faults()

            d.sign_in(idp, profile="broken")
            a = d.request({"op": "check", "profile": "broken", "min_valid": 0}, timeout=30)
            assert_error(self, a, "output_failed")
            self.assertIn(blocker, a["message"])
            st = d.status("broken")
            self.assertFalse(st["outputs"][0]["ok"])
            self.assertTrue(st["outputs"][0]["error"])
            # The token itself is fine.
            self.assertTrue(d.request({"op": "token", "profile": "broken"})["ok"])
            d.stop()


@unittest.skipUnless(harness.IS_ROOT, "needs root to create and become another user")
class PeerTest(unittest.TestCase):
    def run_as(self, user, args, **kw):
        return subprocess.run(["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid, "--clear-groups",
                               "--"] + args, capture_output=True, text=True, timeout=30, **kw)

    def test_other_user_is_forbidden(self):
        user = harness.ensure_user(OTHER_USER)
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            # The socket is 0600 in a 0700 directory: another user cannot even connect...
            self.assertEqual(os.stat(env.socket_path).st_mode & 0o777, 0o600)
            p = self.run_as(user, [harness.TOKENCTL, "--socket", env.socket_path, "status"])
            env.client_stderr.append(p.stderr)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("permission denied", p.stderr)

            # ...and when a careless SocketMode lets them, the daemon's own check answers forbidden.
            os.chmod(env.runtime, 0o755)
            os.chmod(env.socket_path, 0o666)
            client = ("import socket, sys\n"
                      "s = socket.socket(socket.AF_UNIX)\n"
                      "s.settimeout(10)\n"
                      "s.connect(sys.argv[1])\n"
                      "try:\n"
                      "    s.sendall(b'{\"op\": \"token\"}\\n{\"op\": \"status\"}\\n')\n"
                      "except BrokenPipeError:\n"
                      "    pass  # refused before the request was sent: the answer is waiting\n"
                      "data = b''\n"
                      "while True:\n"
                      "    try:\n"
                      "        chunk = s.recv(65536)\n"
                      "    except ConnectionResetError:\n"
                      "        break\n"
                      "    if not chunk:\n"
                      "        break\n"
                      "    data += chunk\n"
                      "sys.stdout.write(data.decode())\n")
            p = self.run_as(user, ["/usr/bin/python3", "-c", client, env.socket_path])
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.splitlines()
            self.assertEqual(len(lines), 1, "more than one answer to a forbidden peer: %r" % lines)
            a = json.loads(lines[0])
            assert_error(self, a, "forbidden")
            self.assertIn("root", a["message"])
            self.assertNotIn("access_token", p.stdout)

            p = self.run_as(user, [harness.TOKENCTL, "--socket", env.socket_path, "token"])
            env.client_stderr.append(p.stderr)
            self.assertEqual(p.returncode, 3)
            self.assertEqual(p.stdout, "")
            self.assertIn("belongs to root", p.stderr)
            d.wait_log("Refused a connection from uid %d" % user.pw_uid)
            # The owner (root here) is still served.
            self.assertTrue(d.status()["ok"])
            d.stop()

    def test_daemon_user_and_root_are_served(self):
        user = harness.ensure_user(OTHER_USER)
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon_as(user)
            self.assertEqual(os.stat(env.socket_path).st_uid, user.pw_uid)
            # root may use anyone's daemon
            self.assertEqual(d.status()["state"], "login_required")
            p = self.run_as(user, [harness.TOKENCTL, "--socket", env.socket_path, "status", "--json"])
            self.assertEqual(json.loads(p.stdout)["state"], "login_required", p.stderr)
            self.assertEqual(p.returncode, 2)
            d.stop()


class FramingTest(unittest.TestCase):
    def test_oversized_invalid_and_half_sent(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()

            # A line of exactly the limit is served.
            head = '{"op":"version","pad":"'
            line = head + "x" * (MAX_REQUEST - len(head) - 2) + '"}'
            self.assertEqual(len(line), MAX_REQUEST)
            with Conn(d.socket_path) as c:
                c.send(line + "\n")
                self.assertTrue(c.answer()["ok"])

            # One byte more: bad_request, then the connection closes (framing is lost).
            for tail in (b"", b"\n"):
                with Conn(d.socket_path) as c:
                    c.send(b'{"op":"version","pad":"' + b"x" * MAX_REQUEST + b'"}' + tail)
                    assert_error(self, c.answer(), "bad_request")
                    self.assertTrue(c.closed_by_daemon())
            # Megabytes without a newline: the same, and the daemon does not read them all.
            with Conn(d.socket_path) as c:
                try:
                    c.send(b"x" * (8 << 20))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                a = c.answer()
                assert_error(self, a, "bad_request")
                self.assertIn("too large", a["message"])

            # Complete but invalid lines are answered and the connection goes on.
            with Conn(d.socket_path) as c:
                c.send(b"not json\n")
                c.send(b'{"op":"status","x":"\xff\xfe"}\n')
                c.send(b"\n")
                c.send(b'{"op":"sta\x00tus"}\n')
                c.send(b'{"op":"version"}\r\n')
                for _ in range(4):
                    assert_error(self, c.answer(), "bad_request")
                self.assertTrue(c.answer()["ok"])

            # A half-sent request does not hold up anyone else, and completes later.
            with Conn(d.socket_path) as slow:
                slow.send('{"op": "sta')
                start = time.monotonic()
                self.assertEqual(d.status()["profile"], "default")
                self.assertLess(time.monotonic() - start, 1.0)
                self.assertTrue(slow.nothing_within(0.2))
                slow.send('tus"}\n')
                self.assertEqual(slow.answer()["profile"], "default")

            # Input that ends without its newline gets an answer, then the close.
            with Conn(d.socket_path) as c:
                c.send('{"op": "status"}')
                c.sock.shutdown(socket.SHUT_WR)
                a = c.answer()
                assert_error(self, a, "bad_request")
                self.assertIn("newline", a["message"])
                self.assertTrue(c.closed_by_daemon())

            # A client that half-closes after complete requests still gets every answer.
            with Conn(d.socket_path) as c:
                c.send('{"op": "version"}\n{"op": "status"}\n')
                c.sock.shutdown(socket.SHUT_WR)
                self.assertIn("version", c.answer())
                self.assertIn("state", c.answer())
                self.assertTrue(c.closed_by_daemon())
            self.assertEqual(d.proc.poll(), None)
            d.stop()

    def test_pipelined_answers_in_order(self):
        with Env() as env:
            idp, d = signed_in_daemon(env)
            # Many requests in one write, answered in order.
            reqs = []
            for i in range(300):
                reqs.append([{"op": "version"}, {"op": "status"}, {"op": "nope"}, "garbage",
                             {"op": "profiles"}, {"op": "status", "profile": "x%d" % i}][i % 6])
            data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in reqs)
            with Conn(d.socket_path) as c:
                c.send(data)
                for i, r in enumerate(reqs):
                    a = c.answer()
                    kind = i % 6
                    if kind == 0:
                        self.assertIn("version", a)
                    elif kind == 1:   # the order is the point; a scheduled refresh may be running
                        self.assertIn(a["state"], ("valid", "refreshing"))
                    elif kind == 2:
                        self.assertEqual(a["error"], "unknown_op")
                    elif kind == 3:
                        self.assertEqual(a["error"], "bad_request")
                    elif kind == 4:
                        self.assertIn("profiles", a)
                    else:
                        self.assertEqual(a["error"], "unknown_profile")
                        self.assertIn("x%d" % i, a["message"])

            # A request that waits holds back the answers after it on its connection only.
            idp.queue_fault("hang")
            with Conn(d.socket_path) as c:
                c.send('{"op": "refresh"}\n{"op": "version"}\n{"op": "status"}\n')
                wait_until(lambda: d.status()["state"] == "refreshing", 10, "refresh under way")
                self.assertTrue(c.nothing_within(0.5), "an answer overtook the waiting refresh")
                # http_timeout is 5 s in the harness: the hung refresh fails, then the rest follows.
                first = c.answer(timeout=30)
                assert_error(self, first, "refresh_failed")
                self.assertIn("version", c.answer())
                self.assertIn("state", c.answer())
            d.stop()

    def test_client_that_never_reads(self):
        with Env() as env:
            idp, d = signed_in_daemon(env)
            rss_before = rss_kib(d.pid)
            n = 20000
            with Conn(d.socket_path) as greedy:
                # Send requests without reading any answer: the daemon stops reading this client
                # once its answers pile up, so our send blocks; do it from a helper thread.
                import threading
                sent = {"n": 0}

                # ~250-byte requests: 5 MB in all, far more than the socket buffers hold.
                request = b'{"op":"status","pad":"' + b"x" * 220 + b'"}\n'

                def feed():
                    try:
                        for i in range(n // 100):
                            greedy.sock.sendall(request * 100)
                            sent["n"] += 100
                    except OSError:
                        pass

                greedy.sock.settimeout(None)
                t = threading.Thread(target=feed, daemon=True)
                t.start()
                wait_until(lambda: sent["n"] >= 1000, 10, "some requests sent")
                time.sleep(0.5)  # let the daemon fill its output queue (the check below has a deadline)
                self.assertLess(sent["n"], n, "the daemon read everything without anyone reading answers")
                # Others are still served, promptly.
                start = time.monotonic()
                self.assertIn(d.status()["state"], ("valid", "refreshing"))   # answered is the point
                self.assertLess(time.monotonic() - start, 1.0)
                self.assertLess(rss_kib(d.pid) - rss_before, 32 * 1024, "daemon memory grew without bound")
                # Now read: every answer arrives, in order.
                for i in range(n):
                    a = greedy.answer(timeout=30)
                    self.assertIn(a["state"], ("valid", "refreshing"))
                t.join(10)
            d.stop()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class WaitTest(unittest.TestCase):
    def test_client_vanishes_mid_wait(self):
        with Env() as env:
            idp, d = signed_in_daemon(env)
            idp.queue_fault("hang")
            c = Conn(d.socket_path)
            c.send({"op": "refresh"})
            wait_until(lambda: d.status()["state"] == "refreshing", 10, "refresh under way")
            c.close()
            # A second client that goes away while its check waits on the same refresh.
            c = Conn(d.socket_path)
            c.send({"op": "check", "min_valid": 3600})
            time.sleep(0.1)
            c.close()
            # The hung refresh times out (5 s) with nobody left to answer: no crash.
            wait_until(lambda: d.status()["state"] != "refreshing", 30, "the refresh to end")
            self.assertIsNone(d.proc.poll())

            # A login whose client goes away after the device message.
            c = Conn(d.socket_path)
            c.send({"op": "login"})
            first = c.answer(timeout=20)
            c.close()
            idp.approve(first["user_code"])
            wait_until(lambda: d.status()["device_message"] is None, 20, "the sign-in to end")
            self.assertIsNone(d.proc.poll())
            d.wait_state("valid")
            log = d.log()
            self.assertNotIn("AddressSanitizer", log)
            self.assertNotIn("runtime error", log)
            d.stop()

    def test_concurrent_clients_while_refresh_hangs(self):
        clients = 1000
        raise_fd_limit(clients + 200)
        with Env() as env:
            idp, d = signed_in_daemon(env)
            idp.set(hang_seconds=30)
            idp.queue_fault("hang")
            waiter = Conn(d.socket_path, timeout=60)
            waiter.send({"op": "refresh"})
            wait_until(lambda: d.status()["state"] == "refreshing", 10, "refresh under way")

            latencies = concurrent_status(d.socket_path, clients)
            self.assertEqual(len(latencies), clients)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            print("\n%d concurrent status clients while a refresh hangs: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                  % (clients, p50 * 1000, p99 * 1000, max(latencies) * 1000))
            self.assertLess(p99, 2.0, "status answers were held up by the hung refresh")
            # The refresh is still hanging: the answers did not wait for it.
            self.assertEqual(d.status()["state"], "refreshing")
            assert_error(self, waiter.answer(timeout=30), "refresh_failed")
            waiter.close()
            d.stop()

    def test_connection_cap(self):
        raise_fd_limit(MAX_CONNECTIONS + 300)
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < MAX_CONNECTIONS + 100:
            self.skipTest("cannot open enough file descriptors")
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            conns = []
            try:
                for _ in range(MAX_CONNECTIONS):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(d.socket_path)
                    conns.append(s)
                # Make sure the daemon accepted them all: a round trip on the last one.
                conns[-1].sendall(b'{"op":"version"}\n')
                conns[-1].settimeout(20)
                self.assertIn(b'"version"', conns[-1].recv(4096))
                with Conn(d.socket_path) as extra:
                    a = extra.answer(timeout=20)
                    assert_error(self, a, "busy")
                    self.assertTrue(extra.closed_by_daemon())
            finally:
                for s in conns:
                    s.close()
            wait_until(lambda: try_status(d), 60, "a connection slot to free up")
            d.stop()


def socket_accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    finally:
        s.close()


class FdLimitTest(unittest.TestCase):
    def test_out_of_file_descriptors(self):
        # A daemon held to 64 descriptors (it cannot raise the limit itself) stops accepting for
        # a moment when it runs out, instead of spinning on the listening socket, and serves
        # again once clients leave.
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon(prefix=["prlimit", "--nofile=64:64", "--"])
            conns = []
            try:
                for _ in range(100):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(d.socket_path)
                    conns.append(s)
                d.wait_log("Cannot accept connections")
                ticks = cpu_ticks(d.pid)
                time.sleep(1.0)  # measuring the CPU spent while stuck, not waiting for a condition
                self.assertLess(cpu_ticks(d.pid) - ticks, 30, "the daemon spins while out of descriptors")
            finally:
                for s in conns:
                    s.close()
            wait_until(lambda: try_status(d), 10, "the daemon to serve again")
            d.stop()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def try_status(d):
    try:
        return d.status()["ok"]
    except (AssertionError, OSError, ValueError):
        return False


def concurrent_status(path, n, timeout=30):
    """n clients connect at once, then each sends status; returns each one's seconds from its
    request to its answer."""
    sel = selectors.DefaultSelector()
    started = {}
    bufs = {}
    latencies = []
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            pass
        socks.append(s)
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    pending = set(socks)
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                try:
                    started[s] = time.monotonic()
                    s.send(b'{"op":"status"}\n')
                except BlockingIOError:
                    continue
                except OSError:
                    pending.discard(s)
                    sel.unregister(s)
                    continue
                sel.modify(s, selectors.EVENT_READ)
                bufs[s] = b""
                continue
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            bufs[s] += chunk
            if b"\n" in bufs[s] or not chunk:
                if b"\n" in bufs[s]:
                    a = json.loads(bufs[s].split(b"\n", 1)[0])
                    if a.get("ok"):
                        latencies.append(time.monotonic() - started[s])
                pending.discard(s)
                sel.unregister(s)
    for s in socks:
        s.close()
    sel.close()
    return latencies


class SocketFileTest(unittest.TestCase):
    def test_socket_file_life(self):
        with Env() as env:
            env.start_idp()
            sock = env.path("deep", "er", "tokend.sock")
            env.write_config(daemon={"socket": sock})
            d = env.start_daemon()
            d.socket_path = sock
            self.assertEqual(os.stat(os.path.dirname(sock)).st_mode & 0o777, 0o700)
            self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)
            self.assertTrue(d.status()["ok"])

            # A second daemon on another state dir but the same socket: refused, the first keeps it.
            env.write_config(daemon={"socket": sock, "state_dir": env.path("state2")})
            p = subprocess.run([harness.TOKEND, "--config", env.config_path] + (["--allow-root"] if harness.IS_ROOT else []),
                               capture_output=True, text=True, env=env.daemon_environment(), timeout=20)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("already served by another process", p.stderr)
            self.assertTrue(d.status()["ok"])
            d.stop()
            self.assertFalse(os.path.exists(sock), "socket file left behind")

            # A stale socket file (nothing listens) is replaced.
            stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stale.bind(sock)
            stale.close()
            self.assertTrue(os.path.exists(sock))
            env.write_config(daemon={"socket": sock})
            d = env.start_daemon()
            d.socket_path = sock
            self.assertTrue(d.status()["ok"])
            d.wait_log("stale socket")
            d.stop()

            # A regular file in the way is not removed.
            with open(sock, "w") as f:
                f.write("mine")
            p = subprocess.run([harness.TOKEND, "--config", env.config_path] + (["--allow-root"] if harness.IS_ROOT else []),
                               capture_output=True, text=True, env=env.daemon_environment(), timeout=20)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("not a socket", p.stderr)
            with open(sock) as f:
                self.assertEqual(f.read(), "mine")

    def test_socket_passed_by_systemd(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            sock = env.path("activated.sock")
            # systemd-socket-activate accepts nothing itself: it passes the listening socket and
            # execs the daemon, which must serve it (and never unlink it). It passes on only the
            # variables named with -E.
            notify = harness.NotifyListener(env.path("notify-sa.sock"))
            e = env.daemon_environment()
            e["NOTIFY_SOCKET"] = notify.path
            args = ["systemd-socket-activate", "-l", sock]
            for k in sorted(e):
                args += ["-E", k]
            args += ["--", harness.TOKEND, "--config", env.config_path]
            if harness.IS_ROOT:
                args.append("--allow-root")
            log_path = env.path("daemon-sa.log")
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=e)
            d = harness.Daemon(env, proc, notify, log_path, sock)
            env.daemons.append(d)
            # The file exists from bind() on, but connections are refused until listen().
            wait_until(lambda: socket_accepts(sock), 10, "the activation socket to listen")
            # The first connection starts the daemon, like socket activation does.
            a = d.request({"op": "status"}, timeout=20)
            self.assertEqual(a["state"], "login_required")
            d.wait_ready()
            self.assertIn("socket systemd passed", d.log())
            self.assertFalse(os.path.exists(env.socket_path), "the daemon made its own socket too")
            d.stop()
            self.assertTrue(os.path.exists(sock), "the daemon removed a socket it did not make")


if __name__ == "__main__":
    unittest.main(verbosity=2)
