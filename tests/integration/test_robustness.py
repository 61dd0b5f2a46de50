"""The robustness promises of interface.md: nothing the daemon waits on (a name lookup, a FIFO,
a hung file system) stalls its loop; a planted symlink is not followed; an oversized request is
answered and closed in order. Every status answer during a fault is timed."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import BUILD, TOKENCTL, Env, wait_until

HANG_RESOLVER = os.path.join(BUILD, "tests", "tools", "hang-resolver.so")
STATUS_LIMIT = 0.100   # seconds: every socket client is answered within 100 ms


class StatusProbe:
    """Asks for status on a fresh connection every 20 ms and records how long each answer took."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.times, self.errors = [], []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            start = time.monotonic()
            try:
                self.daemon.request({"op": "status"}, timeout=20)
            except Exception as e:  # noqa: BLE001 - recorded, asserted below
                self.errors.append(repr(e))
            self.times.append(time.monotonic() - start)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join()

    def assert_fast(self, test, minimum=20):
        test.assertEqual(self.errors, [])
        test.assertGreaterEqual(len(self.times), minimum, "too few status answers were timed")
        worst = max(self.times)
        test.assertLess(worst, STATUS_LIMIT, "the slowest of %d status answers took %.0f ms"
                        % (len(self.times), worst * 1000))
        return worst


def token_of(path):
    try:
        return harness.read(path)
    except FileNotFoundError:
        return None


def sanitizer_env():
    """LD_PRELOAD beside AddressSanitizer: the shim need not come after libasan."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "verify_asan_link_order=0"}


class SlowNameLookupTest(unittest.TestCase):
    def test_a_hung_lookup_stalls_nothing(self):
        with Env() as env:
            idp = env.start_idp(lifetime=6)
            hung_url = "https://idp.hang.invalid:%d" % int(idp.url.rsplit(":", 1)[1])
            other_token = env.path("other.token")
            env.write_config(daemon={"http_timeout": "2s"}, profiles={
                "other": {"token_file": other_token},
                "hung": {"authority_host": hung_url, "ca_file": idp.ca_file,
                         "token_file": env.path("hung.token")},
            })
            e = sanitizer_env()
            e.update({"LD_PRELOAD": HANG_RESOLVER, "AKSSPARK_HANG_RESOLVER_SEC": "12"})
            d = env.start_daemon(env=e)
            d.sign_in(idp, profile="other")
            first = token_of(other_token)

            # Each login asks the hung host for a device code: the lookup hangs for 12 s, the
            # transfer times out after 2 s and is removed from curl while its lookup still runs.
            logins = [subprocess.Popen([TOKENCTL, "--socket", d.socket_path, "--profile", "hung", "login"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
            try:
                with StatusProbe(d) as probe:
                    wait_until(lambda: "Failed" in d.log() and "hang.invalid" in d.log() or
                               logins[0].poll() is not None, 30, "the hung login to fail")
                    logins.append(subprocess.Popen(
                        [TOKENCTL, "--socket", d.socket_path, "--profile", "hung", "login"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                    # The other profile keeps refreshing while lookups hang.
                    wait_until(lambda: token_of(other_token) not in (None, first), 20,
                               "the other profile to refresh")
                    second = token_of(other_token)
                    wait_until(lambda: token_of(other_token) not in (None, second), 20,
                               "the other profile to refresh again")
                    time.sleep(0.5)
                worst = probe.assert_fast(self)
                print("slowest status during the hung lookup: %.1f ms of %d"
                      % (worst * 1000, len(probe.times)), flush=True)
                self.assertTrue(idp.token_is_valid(token_of(other_token)))
                # SIGTERM while a lookup still hangs.
                d.stop(timeout=1.0)
            finally:
                for p in logins:
                    p.kill()
                    p.wait()


class OversizedRequestTest(unittest.TestCase):
    def test_answered_then_closed_in_order(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            for size in (70 * 1024, 512 * 1024):
                with d.connect(timeout=10) as s:
                    sent = {}

                    def send():
                        try:
                            s.sendall(b"x" * size)
                            sent["ok"] = True
                        except OSError as e:
                            sent["error"] = e

                    t = threading.Thread(target=send, daemon=True)
                    t.start()
                    data = b""
                    while True:   # a reset raises ConnectionResetError here
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    t.join(10)
                    answer = json.loads(data.decode().splitlines()[0])
                    self.assertEqual(answer.get("error"), "bad_request", answer)
                    self.assertIn("too large", answer["message"])
                    self.assertEqual(sent, {"ok": True}, "the client's send failed")
            self.assertEqual(d.status()["state"], "login_required")
            d.stop()


class PerRunUser:
    """A local user made for this run only (useradd), removed again (userdel) at the end."""

    def __enter__(self):
        self.name = "aksr%s" % os.urandom(4).hex()
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", self.name],
                       check=True, capture_output=True)
        import pwd
        self.pw = pwd.getpwnam(self.name)
        return self.pw

    def __exit__(self, *exc):
        subprocess.run(["userdel", self.name], capture_output=True)


def output_of(status, path):
    for o in status["outputs"]:
        if o["path"] == path:
            return o
    raise AssertionError("no output %s in %r" % (path, status))


@unittest.skipUnless(harness.IS_ROOT, "planting a link as another user needs root")
class SymlinkTest(unittest.TestCase):
    def test_planted_link_dangling_link_and_own_link(self):
        with Env() as env, PerRunUser() as mallory:
            idp = env.start_idp(lifetime=300)
            shared = env.path("shared")           # as /tmp: sticky and world-writable
            os.mkdir(shared)
            os.chmod(shared, 0o1777)
            victim = env.path("victim.conf")      # a root-owned 0644 file
            with open(victim, "w") as f:
                f.write("root's own\n")
            os.chmod(victim, 0o644)
            planted = os.path.join(shared, "spark.properties")
            os.symlink(victim, planted)
            os.lchown(planted, mallory.pw_uid, mallory.pw_gid)
            victim2 = env.path("victim2.conf")    # the token file needs no read first
            with open(victim2, "w") as f:
                f.write("root's own\n")
            os.chmod(victim2, 0o644)
            planted_token = os.path.join(shared, "oauthToken")
            os.symlink(victim2, planted_token)
            os.lchown(planted_token, mallory.pw_uid, mallory.pw_gid)
            nowhere = env.path("nowhere")
            dangling = env.path("dangling.properties")
            os.symlink(os.path.join(nowhere, "deep", "spark.properties"), dangling)
            mine_target = env.path("mine.properties")
            mine = os.path.join(shared, "mine.properties")   # the daemon's own (root's) link
            os.symlink(mine_target, mine)
            env.write_config(profiles={"default": {"spark_properties": [planted, dangling, mine],
                                                   "token_file": planted_token}})
            d = env.start_daemon()
            d.sign_in(idp)

            st = wait_until(lambda: (lambda s: s if all(o["ok"] is not None for o in s["outputs"]) else None)(d.status()),
                            10, "every output attempted")
            for path, target in ((planted_token, victim2), (planted, victim)):
                self.assertEqual(harness.read(target), "root's own\n", "%s was written through" % path)
                self.assertEqual(os.stat(target).st_mode & 0o777, 0o644)
                o = output_of(st, path)
                self.assertFalse(o["ok"], o)
                self.assertIn("symlink", o["error"])
                self.assertIn("sticky", o["error"])
            o = output_of(st, dangling)
            self.assertFalse(o["ok"], o)
            self.assertFalse(os.path.exists(nowhere), "a directory was created where a link points")
            self.assertTrue(output_of(st, mine)["ok"])
            self.assertIn("oauthToken", harness.read(mine_target))
            self.assertTrue(os.path.islink(mine))
            p = d.ctl("check")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            d.stop()

    def test_root_writes_a_users_file_with_the_users_rights(self):
        with Env() as env, PerRunUser() as alice:
            idp = env.start_idp(lifetime=300)
            home = env.path("alice")
            os.mkdir(home, 0o755)
            os.chown(home, alice.pw_uid, alice.pw_gid)
            rootdir = env.path("rootdir")         # alice may not write here
            os.mkdir(rootdir, 0o755)
            victim = os.path.join(rootdir, "victim")
            with open(victim, "w") as f:
                f.write("root's own\n")
            os.chmod(victim, 0o644)
            link = os.path.join(home, "spark.properties")
            os.symlink(victim, link)
            os.lchown(link, alice.pw_uid, alice.pw_gid)
            token_file = os.path.join(home, "kube", "oauthToken")
            env.write_config(profiles={"default": {"spark_properties": link, "token_file": token_file}})
            d = env.start_daemon()
            d.sign_in(idp)
            st = wait_until(lambda: (lambda s: s if all(o["ok"] is not None for o in s["outputs"]) else None)(d.status()),
                            10, "every output attempted")
            o = output_of(st, link)
            self.assertFalse(o["ok"], o)
            self.assertIn("Permission denied", o["error"])
            self.assertEqual(harness.read(victim), "root's own\n")
            # Her own new file and directory are hers, made with her rights.
            self.assertTrue(output_of(st, token_file)["ok"])
            for path in (token_file, os.path.dirname(token_file)):
                self.assertEqual(os.stat(path).st_uid, alice.pw_uid, path)
            self.assertEqual(d.ctl("check").returncode, 1)
            d.stop()


MEMFS = os.path.join(harness.SOURCE, "tests", "tools", "memfs.py")
DEBIAN_PYTHON = "/usr/bin/python3"   # python3-fusepy is Debian's


def all_attempted(daemon, profile=None):
    st = daemon.status(profile)
    return st if st["outputs"] and all(o["ok"] is not None for o in st["outputs"]) else None


class FifoTest(unittest.TestCase):
    def test_fifo_at_spark_properties(self):
        with Env() as env:
            idp = env.start_idp(lifetime=300)
            fifo = env.path("spark.properties")
            os.mkfifo(fifo)
            env.write_config(profiles={"default": {"spark_properties": fifo}})
            d = env.start_daemon()
            with StatusProbe(d) as probe:
                d.sign_in(idp, timeout=15)
                st = wait_until(lambda: all_attempted(d), 10, "every output attempted")
                time.sleep(0.3)
            probe.assert_fast(self, minimum=5)
            o = output_of(st, fifo)
            self.assertFalse(o["ok"], o)
            self.assertIn("not a regular file", o["error"])
            self.assertTrue(output_of(st, os.path.join(env.home, ".kube", "oauthToken"))["ok"])
            self.assertTrue(stat_is_fifo(fifo))
            self.assertEqual(d.ctl("check").returncode, 1)
            d.stop()


def stat_is_fifo(path):
    import stat
    return stat.S_ISFIFO(os.lstat(path).st_mode)


class MemFs:
    """tests/tools/memfs.py mounted on a directory of the test's own; stop() freezes it."""

    def __init__(self, mountpoint):
        self.mountpoint = mountpoint
        os.mkdir(mountpoint)
        self.proc = subprocess.Popen([DEBIAN_PYTHON, MEMFS, mountpoint], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.ismount(mountpoint) or self.proc.poll() is not None, 10, "memfs mounted")
        if self.proc.poll() is not None:
            raise AssertionError("memfs.py exited with %s" % self.proc.returncode)

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        self.thaw()
        subprocess.run(["fusermount3", "-u", self.mountpoint], capture_output=True)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
            self.proc.kill()
            self.proc.wait()


@unittest.skipUnless(harness.IS_ROOT and os.path.exists("/dev/fuse") and os.path.exists(DEBIAN_PYTHON),
                     "mounting a FUSE file system needs root and /dev/fuse")
class HungFileSystemTest(unittest.TestCase):
    def test_a_stopped_fuse_server_under_one_output_stalls_nothing(self):
        with Env() as env:
            fs = MemFs(env.path("nfs-home"))
            try:
                idp = env.start_idp(lifetime=6)
                hung_token = os.path.join(fs.mountpoint, "kube", "oauthToken")
                other_token = env.path("other.token")
                env.write_config(profiles={
                    "hung": {"token_file": hung_token},
                    "other": {"token_file": other_token},
                })
                d = env.start_daemon()
                d.sign_in(idp, profile="hung")
                d.sign_in(idp, profile="other")
                self.assertTrue(idp.token_is_valid(harness.read(hung_token)))
                first = token_of(other_token)

                written = d.status("hung")["outputs"][0]["last_write"]
                frozen_at = time.time()
                fs.freeze()
                try:
                    with StatusProbe(d) as probe:
                        # The hung profile's next refresh tries to write under the stopped server.
                        refreshes = len([r for r in idp.requests("token")
                                         if r.get("grant_type") == "refresh_token"])
                        wait_until(lambda: len([r for r in idp.requests("token")
                                                if r.get("grant_type") == "refresh_token"]) >= refreshes + 2,
                                   30, "both profiles to refresh")
                        wait_until(lambda: token_of(other_token) not in (None, first), 20,
                                   "the other profile to refresh")
                        second = token_of(other_token)
                        wait_until(lambda: token_of(other_token) not in (None, second), 20,
                                   "the other profile to refresh again")
                        self.assertTrue(idp.token_is_valid(token_of(other_token)))
                        for name in ("hung", "other"):
                            d.wait_state("valid", name)   # 6 s tokens: refreshes keep running
                        # The hung profile refreshed, and its write is the one that hangs.
                        hung = d.status("hung")
                        self.assertGreaterEqual(hung["last_refresh"], int(frozen_at))
                        self.assertEqual(hung["outputs"][0]["last_write"], written)
                    worst = probe.assert_fast(self)
                    print("slowest status while a FUSE server was stopped: %.1f ms of %d"
                          % (worst * 1000, len(probe.times)), flush=True)
                    # SIGTERM with the write still hung: the daemon does not wait for it.
                    d.stop(timeout=1.0)
                finally:
                    fs.thaw()
            finally:
                fs.close()

    def test_a_stopped_fuse_server_under_the_state_dir_stalls_nothing_at_start(self):
        # A profile's start reads its saved sign-in and sweeps stale temp files in the store's
        # worker: with the state directory hung, a profile added by a reload starts, and the
        # socket keeps answering; the profile goes on once the file system answers again.
        with Env() as env:
            fs = MemFs(env.path("nfs-state"))
            try:
                idp = env.start_idp(lifetime=300)
                state = os.path.join(fs.mountpoint, "state")
                env.write_config(daemon={"state_dir": state}, profiles={"default": {}})
                d = env.start_daemon()
                d.sign_in(idp)
                env.write_config(daemon={"state_dir": state}, profiles={
                    "default": {}, "late": {"token_file": env.path("late.token")}})
                fs.freeze()
                try:
                    with StatusProbe(d) as probe:
                        r = d.ctl("reload", timeout=10)
                        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                        self.assertIn("Configuration reloaded: 2 profiles", d.log())
                        self.assertEqual(d.status("late")["state"], "login_required")
                        time.sleep(1.0)
                        self.assertEqual(d.status("default")["state"], "valid")
                        # Its saved sign-in is still being read: nothing said about it yet.
                        self.assertNotIn("Profile late: not signed in yet", d.log())
                    worst = probe.assert_fast(self)
                    print("slowest status while the state directory hung: %.1f ms of %d"
                          % (worst * 1000, len(probe.times)), flush=True)
                finally:
                    fs.thaw()
                wait_until(lambda: "Profile late: not signed in yet" in d.log(), 20,
                           "the late profile's load to finish")
                self.assertEqual(d.status("late")["state"], "login_required")
                d.stop()
            finally:
                fs.close()


class IdentityKeysTest(unittest.TestCase):
    SERVER_A = "6dae42f8-4368-4678-94ff-3960e28e3630"
    SERVER_B = "0d9ef4b2-7d58-4e0c-9f2c-6a4e9e3d1f11"

    def test_restart_with_another_server_id_is_a_new_sign_in(self):
        with Env() as env:
            idp = env.start_idp(lifetime=300)
            env.write_config(profiles={"default": {"server_id": self.SERVER_A}})
            d = env.start_daemon()
            d.sign_in(idp)
            d.wait_state("valid")
            d.stop()

            # Same server: the sign-in survives the restart (a refresh from it may be under way).
            d = env.start_daemon()
            d.wait_state("valid")
            d.stop()

            env.write_config(profiles={"default": {"server_id": self.SERVER_B}})
            d = env.start_daemon()
            st = d.status()
            self.assertEqual(st["state"], "login_required", st)
            answer = d.request({"op": "token"})
            self.assertFalse(answer.get("ok"), "a token for the old audience was served")
            self.assertEqual(d.ctl("check").returncode, 2)   # a person must sign in
            d.stop()


@unittest.skipUnless(harness.IS_ROOT, "chattr +i needs root")
class StoreFailureTest(unittest.TestCase):
    def test_a_failed_save_is_shown_retried_and_loses_nothing(self):
        with Env() as env:
            idp = env.start_idp(lifetime=8)
            env.write_config()
            d = env.start_daemon()
            d.sign_in(idp)
            self.assertTrue(d.status()["store"]["ok"])
            subprocess.run(["chattr", "+i", env.state], check=True)
            try:
                # The next refresh rotates the refresh token and cannot save it.
                # 8 s tokens: the state is read until valid beside the failed save, not once.
                st = harness.wait_value(d.status, lambda s: s["store"]["ok"] is False and s["state"] == "valid",
                                        30, "a failed save in status, the token valid")
                self.assertTrue(st["store"]["error"])
                p = d.ctl("check", "--min-valid", "1s")
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn("save the sign-in", p.stdout + p.stderr)
            finally:
                subprocess.run(["chattr", "-i", env.state], check=True)
            # Retried without a refresh: saved, and check passes again.
            wait_until(lambda: d.status()["store"]["ok"] is True, 90, "the save retried")
            p = d.ctl("check", "--min-valid", "1s")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            d.stop()
            # The saved refresh token is the current one: no new sign-in after a restart.
            d = env.start_daemon()
            harness.wait_value(d.status, lambda s: s["state"] == "valid" and s["last_refresh"], 30,
                               "a refresh with the saved token")
            d.stop()


class RefreshFloorTest(unittest.TestCase):
    def test_expires_in_1_refreshes_at_most_once_per_30s(self):
        with Env() as env:
            idp = env.start_idp(lifetime=1)
            env.write_config()
            # Without the test aid: the real 30 s floor.
            d = env.start_daemon(env={"AKSSPARK_TEST_REFRESH_FLOOR_SEC": None})
            d.sign_in(idp)
            signed_in = time.time()

            def refreshes():
                return [r for r in idp.requests("token") if r.get("grant_type") == "refresh_token"]

            # Old behaviour: 16 refreshes in 8 s. Now none in the first 30 s...
            time.sleep(12)   # observing that nothing happens takes time; no condition to wait for
            self.assertEqual(refreshes(), [], "a scheduled refresh within 30 s of the last one")
            # ... and then one, not sooner than 30 s after the sign-in.
            wait_until(lambda: refreshes(), 45, "the refresh after the floor")
            first = refreshes()[0]["t"]
            self.assertGreaterEqual(first - signed_in, 29.0)
            time.sleep(3)
            self.assertEqual(len(refreshes()), 1)
            # A forced refresh is not held back.
            p = d.ctl("refresh")
            self.assertEqual(len(refreshes()), 2, p.stderr)
            d.stop()


class NearExpiryHangTest(unittest.TestCase):
    def test_a_hung_refresh_near_expiry_gets_a_second_try(self):
        with Env() as env:
            idp = env.start_idp(lifetime=8, hang_seconds=30)
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            env.write_config(daemon={"http_timeout": "5s"})
            d = env.start_daemon()
            d.sign_in(idp)

            def refreshes():
                return [r for r in idp.requests("token") if r.get("grant_type") == "refresh_token"]

            idp.queue_fault("hang")   # the next refresh request hangs for 30 s
            lapses, reads = [], 0
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and len([r for r in refreshes() if not r.get("fault")]) < 2:
                token = token_of(token_file)
                reads += 1
                if not token or not idp.token_is_valid(token):
                    lapses.append(time.time())
                time.sleep(0.02)
            rs = refreshes()
            self.assertGreaterEqual(len(rs), 3, rs)
            self.assertEqual(rs[0].get("fault"), "hang")
            # The second try went out well before the first one's 5 s timeout.
            self.assertLess(rs[1]["t"] - rs[0]["t"], 3.0)
            self.assertEqual(lapses, [], "the token on disk expired %d times in %d reads" % (len(lapses), reads))
            self.assertIn("trying again on a new connection", d.log())
            d.wait_state("valid")
            d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
