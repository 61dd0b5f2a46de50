"""aksspark-tokenctl against the real daemon: every command, every exit code (0 success, 1
transient, 2 sign-in needed, 3 unreachable or forbidden, 64 usage), its one-line messages,
the default socket, and the ExecCredential it prints."""

import datetime
import json
import os
import subprocess
import unittest

import harness
from harness import Env, wait_until


def ctl(args, env=None, timeout=60, record=None):
    """aksspark-tokenctl without the harness's --socket (to test the defaults too)."""
    e = dict(os.environ)
    for k in ("AKSSPARK_TOKEND_SOCKET", "KUBERNETES_EXEC_INFO"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run([harness.TOKENCTL] + list(args), capture_output=True, text=True, timeout=timeout, env=e)
    if record is not None:
        record.client_stderr.append(p.stderr)
    return p


def signed_in(env, lifetime=600, **config):
    idp = env.start_idp(lifetime=lifetime)
    env.write_config(**config)
    d = env.start_daemon()
    d.sign_in(idp)
    return idp, d


class TokenctlTest(unittest.TestCase):
    def assertExit(self, p, code, stderr_has=None):
        self.assertEqual(p.returncode, code, "exit %d, stderr %r, stdout %r" % (p.returncode, p.stderr, p.stdout))
        if code != 0:
            # One line that says what is wrong.
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            self.assertTrue(p.stderr.startswith("aksspark-tokenctl: "), p.stderr)
        if stderr_has:
            self.assertIn(stderr_has, p.stderr)

    def test_usage_errors(self):
        for args, text in ((["--help"], None), (["--version"], None)):
            p = ctl(args)
            self.assertExit(p, 0)
        self.assertIn("exec-credential", ctl(["--help"]).stdout)
        self.assertRegex(ctl(["--version"]).stdout, r"^aksspark-tokenctl \d+\.\d+\.\d+\n$")
        for args, text in (([], "no command"),
                           (["frobnicate"], "unknown command"),
                           (["status", "--bogus"], "unknown option"),
                           (["status", "--profile"], "needs a value"),
                           (["status", "token"], "one command"),
                           (["token", "--json"], "--json"),
                           (["status", "--min-valid", "5m"], "--min-valid"),
                           (["check", "--min-valid", "5 minutes"], "not a duration"),
                           (["check", "--min-valid", "-5m"], "not a duration"),
                           (["check", "--min-valid", "9999999h"], "not a duration"),
                           (["--profile", "a b", "status"], "not a profile name"),
                           (["--profile", "../x", "status"], "not a profile name")):
            # Usage is checked before the daemon is asked: no socket needed.
            p = ctl(["--socket", "/nonexistent/sock"] + args)
            self.assertExit(p, 64, text)

    def test_daemon_unreachable(self):
        with Env() as env:
            # No socket at all.
            p = ctl(["--socket", env.path("nothing.sock"), "status"], record=env)
            self.assertExit(p, 3, "systemctl --user start aksspark-tokend.socket")
            self.assertIn("aksspark-tokend@$USER.socket", p.stderr)
            self.assertIn(env.path("nothing.sock"), p.stderr)
            # The default socket follows XDG_RUNTIME_DIR.
            p = ctl(["token"], env={"XDG_RUNTIME_DIR": env.runtime}, record=env)
            self.assertExit(p, 3, os.path.join(env.runtime, "aksspark-tokend.sock"))

            # A daemon that died and left its socket file: nothing listens.
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            d.kill()
            self.assertTrue(os.path.exists(env.socket_path))
            for cmd in ("status", "token", "check", "refresh", "login", "exec-credential", "logout", "profiles"):
                p = d.ctl(cmd)
                self.assertExit(p, 3, "not running")
                self.assertEqual(p.stdout, "")

    def test_exit_codes_through_a_sign_in(self):
        with Env() as env:
            idp = env.start_idp(lifetime=600)
            env.write_config()
            d = env.start_daemon()

            # 2: a person must sign in.
            for args in (["token"], ["check"], ["refresh"], ["exec-credential"], ["status"]):
                p = d.ctl(*args)
                self.assertEqual(p.returncode, 2, (args, p.stderr))
            p = d.ctl("token")
            self.assertExit(p, 2, "login")
            self.assertEqual(p.stdout, "")
            p = d.ctl("status")
            self.assertIn("login_required", p.stdout)

            # 64: a profile that does not exist (the daemon says so).
            p = d.ctl("--profile", "nope", "status")
            self.assertExit(p, 64, "no profile named nope")

            # login: the message with the code, then 0 once approved.
            out = d.sign_in(idp, user="carol@contoso.com")
            self.assertIn("https://microsoft.com/devicelogin", out)
            self.assertIn("Signed in as carol@contoso.com", out)

            # 0 everywhere now.
            p = d.ctl("status")
            self.assertExit(p, 0)
            for text in ("State:        valid", "carol@contoso.com", "valid for", os.path.join(env.home, ".kube", "oauthToken"),
                         "ok"):
                self.assertIn(text, p.stdout)
            p = d.ctl("status", "--json")
            self.assertExit(p, 0)
            st = json.loads(p.stdout)
            self.assertEqual(st["state"], "valid")
            self.assertEqual(st["account"], "carol@contoso.com")

            p = d.ctl("token")
            self.assertExit(p, 0)
            self.assertTrue(p.stdout.endswith("\n"))
            token = p.stdout[:-1]
            self.assertTrue(idp.token_is_valid(token))
            with open(os.path.join(env.home, ".kube", "oauthToken")) as f:
                self.assertEqual(f.read(), token)

            p = d.ctl("check")
            self.assertExit(p, 0)
            self.assertIn("default: valid for", p.stdout)
            p = d.ctl("check", "--min-valid", "9m")
            self.assertExit(p, 0)
            p = d.ctl("profiles")
            self.assertExit(p, 0)
            self.assertRegex(p.stdout, r"^default\s+valid\s+\S+ left\s+carol@contoso.com\n$")
            p = d.ctl("profiles", "--json")
            self.assertEqual(json.loads(p.stdout)["profiles"][0]["name"], "default")

            n = len(idp.requests("token"))
            p = d.ctl("refresh")
            self.assertExit(p, 0)
            self.assertEqual(len(idp.requests("token")), n + 1)
            self.assertNotEqual(d.ctl("token").stdout, p.stdout)

            # 1: a token cannot be valid that long, even after a refresh.
            p = d.ctl("check", "--min-valid", "2h")
            self.assertExit(p, 1, "less than the 2h00m asked for")

            # 1: the identity provider fails.
            idp.queue_fault("503", count=50)
            p = d.ctl("refresh")
            self.assertExit(p, 1, "refresh failed")
            idp.clear_faults()

            # logout: 0, then 2.
            p = d.ctl("logout")
            self.assertExit(p, 0)
            self.assertIn("Signed out", p.stdout)
            p = d.ctl("check")
            self.assertExit(p, 2, "login")
            d.stop()

    def test_login_declined_and_expired(self):
        with Env() as env:
            idp = env.start_idp(lifetime=600)
            env.write_config()
            d = env.start_daemon()
            proc = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            code = wait_until(lambda: idp.pending_device_codes(), 20, "a device code")[0]
            idp.decline(code)
            out, err = proc.communicate(timeout=30)
            env.client_stderr.append(err)
            self.assertEqual(proc.returncode, 2, err)
            self.assertIn(code, out)
            self.assertIn("declined", err)

            idp.set(devicecode_expires_in=2, interval=1)
            p = d.ctl("login", timeout=60)
            self.assertExit(p, 2, "expired")
            self.assertEqual(d.status()["state"], "login_required")
            d.stop()

    def test_output_failure_and_expired_token(self):
        with Env() as env:
            blocker = env.path("file")
            with open(blocker, "w") as f:
                f.write("x")
            idp, d = signed_in(env, lifetime=6, profiles={"default": {"token_file": os.path.join(blocker, "token")}})
            # check fails with 1 when an output cannot be written, though the token is fine...
            p = d.ctl("check", "--min-valid", "1s")
            self.assertExit(p, 1, blocker)
            # ...while token and exec-credential still hand the token out.
            p = d.ctl("token")
            self.assertExit(p, 0)
            self.assertTrue(idp.token_is_valid(p.stdout.strip()))
            p = d.ctl("status")
            self.assertIn("FAILED", p.stdout)

            # Every refresh fails until the token expires: status says so with 1.
            idp.queue_fault("500", count=1000)
            d.wait_state("expired", timeout=30)
            # Retries keep running: the state is read until it says expired, never at one instant.
            p = d.wait_ctl(lambda p: "State:        expired" in p.stdout, "status", what="status saying expired")
            self.assertEqual(p.returncode, 1, p.stderr)  # the summary on stdout says why
            p = d.ctl("token")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(p.stdout, "")
            d.stop()

    def test_token_waits_for_the_first_refresh(self):
        with Env() as env:
            idp, d = signed_in(env)
            d.stop()
            # A fresh start (as socket activation does on the first call): the first call waits
            # for the token rather than failing.
            d = env.start_daemon()
            p = d.ctl("token")
            self.assertExit(p, 0)
            self.assertTrue(idp.token_is_valid(p.stdout.strip()))
            d.stop()

    def test_default_socket(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            p = ctl(["status"], env={"XDG_RUNTIME_DIR": env.runtime}, record=env)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("login_required", p.stdout)
            p = ctl(["status"], env={"XDG_RUNTIME_DIR": env.path("elsewhere"), "AKSSPARK_TOKEND_SOCKET": d.socket_path},
                    record=env)
            self.assertEqual(p.returncode, 2, p.stderr)
            # --socket wins over both.
            p = ctl(["--socket", env.path("nope.sock"), "status"], env={"AKSSPARK_TOKEND_SOCKET": d.socket_path},
                    record=env)
            self.assertEqual(p.returncode, 3)
            d.stop()

    def test_exec_credential(self):
        v1, v1beta1 = "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"
        info = '{"kind":"ExecCredential","apiVersion":"%s","spec":{"interactive":false}}'
        with Env() as env:
            idp, d = signed_in(env)
            expires_on = d.status()["expires_on"]
            # The answer's apiVersion: --api-version, else KUBERNETES_EXEC_INFO's (client-go
            # always sends it), else v1beta1 (fabric8, so Spark, never does, and wants its
            # kubeconfig's version back).
            for args, exec_info, version in (([], None, v1beta1),
                                             ([], info % v1, v1),
                                             ([], info % v1beta1, v1beta1),
                                             (["--api-version", v1beta1], None, v1beta1),
                                             (["--api-version", v1], None, v1),
                                             (["--api-version", v1], info % v1beta1, v1)):
                p = d.ctl("exec-credential", *args, env={"KUBERNETES_EXEC_INFO": exec_info} if exec_info else None)
                self.assertExit(p, 0)
                self.assertEqual(p.stderr, "", "fabric8 parses stderr and stdout as one")
                cred = json.loads(p.stdout)
                self.assertEqual(cred["kind"], "ExecCredential")
                self.assertEqual(cred["apiVersion"], version, (args, exec_info))
                self.assertTrue(idp.token_is_valid(cred["status"]["token"]))
                ts = datetime.datetime.strptime(cred["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
                self.assertEqual(int(ts.replace(tzinfo=datetime.timezone.utc).timestamp()), expires_on)
            p = d.ctl("exec-credential", env={"KUBERNETES_EXEC_INFO":
                                              '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}'})
            self.assertExit(p, 64, "v1alpha1")
            self.assertEqual(p.stdout, "")
            p = d.ctl("exec-credential", "--api-version", "client.authentication.k8s.io/v1alpha1")
            self.assertExit(p, 64, "--api-version")
            self.assertEqual(p.stdout, "")
            self.assertEqual(len(p.stderr.strip().splitlines()), 1)
            p = d.ctl("status", "--api-version", v1)
            self.assertExit(p, 64, "exec-credential only")
            d.stop()

    def test_messages_never_carry_a_token(self):
        with Env() as env:
            idp, d = signed_in(env)
            token = d.ctl("token").stdout.strip()
            idp.revoke("alice@contoso.com")
            for args in (["refresh"], ["check", "--min-valid", "1h"], ["status"], ["profiles"]):
                p = d.ctl(*args)
                self.assertNotIn(token, p.stderr)
                if args[0] != "status":
                    self.assertNotIn(token, p.stdout)
            d.stop()
        # (Env also scans every stderr for every secret the identity provider issued.)


if __name__ == "__main__":
    unittest.main(verbosity=2)
