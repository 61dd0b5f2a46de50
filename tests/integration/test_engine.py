"""The token engine end to end: the real daemon signs in with the device-code flow against the
local identity provider over HTTPS, refreshes before expiry with rotation, survives faults and
restarts, and hands revocation to a person."""

import os
import threading
import time
import unittest

import harness
from harness import Env, wait_until

USER = "alice@contoso.com"


def token_requests(idp, grant=None, since=0.0):
    return [r for r in idp.requests("token")
            if r["t"] >= since and (grant is None or r.get("grant_type") == grant)]


def refreshes(idp, since=0.0, ok=None):
    out = token_requests(idp, "refresh_token", since)
    if ok is not None:
        out = [r for r in out if (r.get("status") == 200 and not r.get("fault")) == ok]
    return out


class TokenFileWatcher:
    """Reads the token file in a loop and records every read that is not a valid token."""

    def __init__(self, path, idp):
        self.path, self.idp = path, idp
        self.bad, self.reads, self.seen = [], 0, set()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            try:
                with open(self.path) as f:
                    token = f.read()
            except FileNotFoundError:
                token = None
            self.reads += 1
            if not token or not self.idp.token_is_valid(token):
                self.bad.append((time.time(), "missing" if token is None else "invalid or expired"))
            else:
                self.seen.add(token)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join()


class EngineTest(unittest.TestCase):
    def test_sign_in_then_refreshes_rotate(self):
        with Env() as env:
            idp = env.start_idp(lifetime=4)
            env.write_config()
            d = env.start_daemon()
            st = d.status()
            self.assertEqual(st["state"], "login_required")

            out = d.sign_in(idp, user=USER)
            self.assertIn("devicelogin", out)
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            first = harness.read(token_file)
            self.assertTrue(idp.token_is_valid(first))
            self.assertEqual(os.stat(token_file).st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(os.path.dirname(token_file)).st_mode & 0o777, 0o700)
            self.assertFalse(first.endswith("\n"))

            st = d.wait_state("valid")   # 4 s tokens: a refresh may be running at any instant
            self.assertEqual(st["account"], USER)
            self.assertGreater(st["expires_in"], 0)
            self.assertGreater(st["next_refresh"], time.time() - 1)

            # Three refreshes, each a new token on disk; only the newest refresh token lives.
            t0 = time.time()
            with TokenFileWatcher(token_file, idp) as w:
                wait_until(lambda: len(refreshes(idp, t0, ok=True)) >= 3, 20, "three refreshes")
                wait_until(lambda: harness.read(token_file) == idp.issued_access_tokens()[-1], 5,
                           "the newest token on disk")
            self.assertEqual(w.bad, [])
            self.assertGreaterEqual(len(w.seen), 3)
            self.assertEqual(len(idp.valid_refresh_tokens(USER)), 1)
            # A 4 s token is refreshed at about half its life, never in a loop.
            times = [r["t"] for r in refreshes(idp, t0, ok=True)]
            gaps = [b - a for a, b in zip(times, times[1:])]
            for g in gaps:
                self.assertGreater(g, 1.0)
                self.assertLess(g, 3.5)
            self.assertIn("default: valid", d.status_text())
            d.stop()

    def test_spark_properties_through_javas_reader(self):
        # The "done when": after refreshes, the token file and two spark.properties (one
        # pre-existing in the padded style with comments, one created from the kubeconfig) hold
        # the current token as Properties.load reads it, and differ only in the token value.
        with Env() as env:
            idp = env.start_idp(lifetime=4)
            padded = env.path("spark.properties")
            original = ("# Spark on AKS, team analytics\r\n"
                        "spark.master                                           k8s://https://x.hcp.westeurope.azmk8s.io:443\r\n"
                        "spark.submit.deployMode                                cluster\r\n"
                        "! the token line, kept current by aksspark-tokend\r\n"
                        "spark.kubernetes.authenticate.submission.oauthToken    PASTE-HERE\r\n"
                        "spark.kubernetes.namespace                             alice\r\n")
            with open(padded, "w", newline="") as f:
                f.write(original)
            kubeconfig = env.path("kubeconfig")
            with open(kubeconfig, "w") as f:
                f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n"
                        "  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://k.example:443'}\n")
            created = env.path("new", "spark.properties")
            env.write_config(profiles={"default": {"spark_properties": [padded, created], "kubeconfig": kubeconfig}})
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            t0 = time.time()
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            wait_until(lambda: len(refreshes(idp, t0, ok=True)) >= 2, 10, "two refreshes")
            # Wait for the outputs to hold the newest token; a refresh may still start before
            # the stop (4 s tokens), and one the stop cuts short leaves the one before in place.
            wait_until(lambda: harness.read(token_file) == idp.issued_access_tokens()[-1], 10,
                       "the outputs holding the newest token")
            issued_before_stop = len(idp.issued_access_tokens())
            d.stop()

            token = harness.read(token_file)
            self.assertIn(token, idp.issued_access_tokens()[issued_before_stop - 1:])
            checker = os.path.join(harness.SOURCE, "tests", "java", "PropsCheck.java")
            p = harness.subprocess.run(["java", checker, padded, created], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            loaded = {r["file"]: r["props"] for r in map(harness.json.loads, p.stdout.splitlines())}
            key = "spark.kubernetes.authenticate.submission.oauthToken"
            self.assertEqual(loaded[padded][key], token)
            self.assertEqual(loaded[created][key], token)
            self.assertEqual(loaded[created]["spark.master"], "k8s://https://k.example:443")
            self.assertEqual(loaded[padded]["spark.master"], "k8s://https://x.hcp.westeurope.azmk8s.io:443")
            self.assertEqual(loaded[padded]["spark.kubernetes.namespace"], "alice")
            with open(padded, newline="") as f:
                self.assertEqual(f.read(), original.replace("PASTE-HERE", token))
            for path in (padded, created):
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_restart_keeps_the_sign_in(self):
        with Env() as env:
            idp = env.start_idp(lifetime=30)
            env.write_config()
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            d.stop()
            state_file = os.path.join(env.state, "default.json")
            self.assertEqual(os.stat(state_file).st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(env.state).st_mode & 0o777, 0o700)
            codes_before = len(idp.requests("devicecode"))

            d2 = env.start_daemon()
            st = d2.wait_state("valid")   # a refresh from the saved sign-in may be under way

            self.assertEqual(st["account"], USER)
            # Forced refresh works from the stored refresh token: no new sign-in.
            r = d2.ctl("refresh")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(idp.requests("devicecode")), codes_before)
            self.assertTrue(idp.token_is_valid(harness.read(os.path.join(env.home, ".kube", "oauthToken"))))
            d2.stop()

    def test_second_daemon_on_the_same_state_directory_exits(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            other = dict(env.daemon_environment())
            p = harness.subprocess.run(
                [harness.TOKEND, "--config", env.config_path] + (["--allow-root"] if harness.IS_ROOT else []),
                env=other, capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 1)
            self.assertIn("pid %d" % d.pid, p.stderr)
            self.assertIn(env.state, p.stderr)
            d.stop()

    def test_revocation_needs_a_person_after_exactly_one_request(self):
        with Env() as env:
            idp = env.start_idp(lifetime=4)
            notes = env.path("notes")
            env.write_config(daemon={"notify_command": "echo \"$AKSSPARK_PROFILE $AKSSPARK_STATE\" >> %s" % notes})
            d = env.start_daemon()
            wait_until(lambda: os.path.exists(notes), 5, "notify_command at start (not signed in)")
            d.sign_in(idp, user=USER)
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            before_revoke = harness.read(token_file)
            idp.revoke(USER)
            t0 = time.time()
            wait_until(lambda: d.status()["state"] == "login_required", 10, "login_required")
            failed = refreshes(idp, t0)
            self.assertEqual(len(failed), 1)
            self.assertIn("AADSTS50173", d.status()["last_error"])
            # The still-valid token stays in place until it expires...
            self.assertEqual(harness.read(token_file), before_revoke)
            # ...then the person is told once more, and no request is ever sent again.
            wait_until(lambda: harness.read(notes).count("default expired") == 1, 8, "expiry notification")
            self.assertEqual(len(refreshes(idp, t0)), 1)
            self.assertEqual(harness.read(notes).count("default login_required"), 2)
            r = d.ctl("check", "--min-valid", "1s")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("login", r.stderr)
            d.stop()

    def test_declined_and_expired_sign_ins(self):
        with Env() as env:
            idp = env.start_idp(lifetime=30)
            env.write_config()
            d = env.start_daemon()
            p = harness.subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login"],
                                         stdout=harness.subprocess.PIPE, stderr=harness.subprocess.PIPE, text=True)
            code = wait_until(idp.pending_device_codes, 10, "a device code")[0]
            idp.decline(code)
            out, err = p.communicate(timeout=20)
            env.client_stderr.append(err)
            self.assertEqual(p.returncode, 2, err)
            self.assertIn("declined", err)

            idp.set(devicecode_expires_in=2)
            r = d.ctl("login", timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("expired", r.stderr)
            self.assertEqual(d.status()["state"], "login_required")
            d.stop()

    def test_a_sign_in_that_cannot_start_says_why(self):
        with Env() as env:
            env.start_idp()
            env.write_config(profiles={"default": {"authority_host": "https://127.0.0.1:1"}})
            d = env.start_daemon()
            r = d.ctl("login", timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("profile default: cannot start the sign-in: cannot reach https://127.0.0.1:1", r.stderr)
            self.assertNotIn("refresh", r.stderr)
            self.assertIn("cannot start the sign-in", d.status()["last_error"])
            d.stop()

    def test_slow_down_adds_five_seconds(self):
        with Env() as env:
            idp = env.start_idp(lifetime=30)
            env.write_config()
            d = env.start_daemon()
            idp.queue_fault("aad:slow_down", endpoint="token")
            p = harness.subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login"],
                                         stdout=harness.subprocess.PIPE, stderr=harness.subprocess.PIPE, text=True)
            wait_until(lambda: len(token_requests(idp, harness_device_grant())) >= 2, 15, "two polls")
            code = idp.pending_device_codes()[0]
            idp.approve(code, user=USER)
            out, err = p.communicate(timeout=20)
            env.client_stderr.append(err)
            self.assertEqual(p.returncode, 0, err)
            polls = [r["t"] for r in token_requests(idp, harness_device_grant())]
            # interval 1 s, then slow_down: the next poll waits 1 + 5 s.
            self.assertGreaterEqual(polls[1] - polls[0], 5.8)
            d.stop()

    def test_every_fault_is_retried_and_the_token_never_lapses(self):
        kinds = ["500", "503", "429", "close", "reset", "html", "badjson", "truncated", "huge", "hang",
                 "aad:temporarily_unavailable"]
        with Env() as env:
            idp = env.start_idp(lifetime=10)
            env.write_config(daemon={"http_timeout": "2s"})
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            with TokenFileWatcher(token_file, idp) as w:
                for kind in kinds:
                    t0 = time.time()
                    idp.queue_fault(kind, endpoint="token", retry_after=1 if kind in ("503", "429") else None)
                    wait_until(lambda: refreshes(idp, t0, ok=False), 15, "the %s fault to hit" % kind)
                    wait_until(lambda: refreshes(idp, t0, ok=True), 15, "a refresh after the %s fault" % kind)
                    failed = refreshes(idp, t0, ok=False)[0]
                    retried = refreshes(idp, t0, ok=True)[0]
                    self.assertGreater(retried["t"], failed["t"] + 0.4, kind)
                    # The identity provider logs its answer before the daemon has read it.
                    wait_until(lambda: d.status()["state"] == "valid", 5, "valid again after the %s fault" % kind)
            self.assertEqual(w.bad, [], "the token file lapsed")
            self.assertGreater(w.reads, 100)
            self.assertIn("correlation id", d.log())
            d.stop()

    def test_retry_after_is_honoured(self):
        with Env() as env:
            idp = env.start_idp(lifetime=12)
            env.write_config(daemon={"http_timeout": "2s"})
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            t0 = time.time()
            idp.queue_fault("503", endpoint="token", retry_after=3)
            wait_until(lambda: refreshes(idp, t0, ok=True), 15, "a refresh after the 503")
            failed = refreshes(idp, t0, ok=False)[0]
            retried = refreshes(idp, t0, ok=True)[0]
            self.assertGreaterEqual(retried["t"] - failed["t"], 2.9)
            self.assertLess(retried["t"] - failed["t"], 4.5)
            d.stop()

    def test_numbers_as_strings_and_refresh_in(self):
        with Env() as env:
            idp = env.start_idp(lifetime=30)
            idp.set(numbers_as_strings=True, refresh_in=8)
            env.write_config()
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            t0 = time.time()
            # Without refresh_in a 30 s token is refreshed at 13.5-15 s; AAD's hint wins.
            wait_until(lambda: refreshes(idp, t0, ok=True), 11, "a refresh at refresh_in (8 s), not at half-life")
            self.assertGreater(refreshes(idp, t0, ok=True)[0]["t"] - t0, 6.0)
            st = wait_until(lambda: (lambda st: st["state"] == "valid" and st)(d.status()), 5, "valid")
            self.assertGreater(st["expires_in"], 20)
            d.stop()

    def test_a_refresh_that_fell_due_while_frozen_runs_at_once(self):
        # A stopped process is what a suspended machine looks like to the daemon: its
        # CLOCK_REALTIME deadline passes while it cannot run.
        with Env() as env:
            idp = env.start_idp(lifetime=8)
            env.write_config()
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            due = d.status()["next_refresh"]
            # A stop that lands inside a loop iteration is measured as that iteration's stall.
            d.frozen_on_purpose = True
            d.proc.send_signal(harness.signal.SIGSTOP)
            try:
                wait_until(lambda: time.time() > due + 1.0, 10, "the refresh to fall due")
                t0 = time.time()
            finally:
                d.proc.send_signal(harness.signal.SIGCONT)
            wait_until(lambda: refreshes(idp, t0, ok=True), 1.0, "the overdue refresh right after resuming")
            wait_until(lambda: d.status()["state"] == "valid", 5, "valid after the overdue refresh")
            d.stop()

    def test_a_hung_provider_delays_no_other_profile(self):
        with Env() as env:
            fast = env.start_idp(lifetime=4)
            slow = env.start_idp(lifetime=4)
            env.write_config(profiles={
                "default": {"authority_host": fast.url, "ca_file": fast.ca_file},
                "other": {"authority_host": slow.url, "ca_file": slow.ca_file,
                          "token_file": env.path("other-token")},
            }, daemon={"http_timeout": "30s"})
            d = env.start_daemon()
            d.sign_in(fast, user=USER, profile="default")
            d.sign_in(slow, user="bob@contoso.com", profile="other")
            slow.queue_fault("hang", endpoint="token", count=100)
            t0 = time.time()
            wait_until(lambda: refreshes(slow, t0), 5, "the hung refresh to start")
            wait_until(lambda: len(refreshes(fast, t0, ok=True)) >= 2, 10, "two refreshes of the other profile")
            started = time.monotonic()
            st = d.status("other")
            self.assertLess(time.monotonic() - started, 0.5)
            self.assertEqual(st["state"], "refreshing")
            wait_until(lambda: d.status("default")["state"] == "valid", 3, "the other profile valid")
            d.stop()


def harness_device_grant():
    return "urn:ietf:params:oauth:grant-type:device_code"


if __name__ == "__main__":
    unittest.main(verbosity=2)
