"""The daemon's life cycle as systemd sees it: READY, STATUS, RELOADING on SIGHUP, STOPPING and a
quick exit on SIGTERM, the watchdog, journald prefixes, and the root check."""

import os
import signal
import subprocess
import unittest

import harness
from harness import Env, wait_until

TEST_USER = "aksspark-it"


class LifecycleTest(unittest.TestCase):
    def test_help_and_version(self):
        for prog in (harness.TOKEND, harness.TOKENCTL):
            p = subprocess.run([prog, "--help"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0)
            self.assertIn("Usage:", p.stdout)
            p = subprocess.run([prog, "--version"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0)
            self.assertRegex(p.stdout, r"^aksspark-token(d|ctl) \d+\.\d+")
        p = subprocess.run([harness.TOKEND, "--bogus"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 64)

    @unittest.skipUnless(harness.IS_ROOT, "needs root (CI runs as root)")
    def test_refuses_root_without_allow_root(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            p = subprocess.run([harness.TOKEND, "--config", env.config_path], capture_output=True, text=True,
                               env=env.daemon_environment(), timeout=10)
            self.assertEqual(p.returncode, 77)
            self.assertIn("--allow-root", p.stderr)
            self.assertFalse(os.path.exists(env.socket_path))

    def test_ready_status_stopping(self):
        with Env() as env:
            env.start_idp()
            env.write_config(profiles={"default": {}, "work": {"token_file": env.path("work-token")}})
            d = env.start_daemon()
            self.assertEqual(oct(os.stat(env.socket_path).st_mode & 0o777), oct(0o600))
            wait_until(lambda: d.status_text() and "work: login_required" in d.status_text(), 5, "STATUS=")
            self.assertIn("default: login_required", d.status_text())
            d.stop(timeout=1.0)
            self.assertIn("1", d.notify.fields("STOPPING"))
            self.assertFalse(os.path.exists(env.socket_path), "socket file left behind")

    @unittest.skipUnless(harness.IS_ROOT, "needs root to create and become a test user")
    def test_runs_as_a_normal_user(self):
        user = harness.ensure_user(TEST_USER)
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon_as(user)
            self.assertEqual(os.stat(env.socket_path).st_uid, user.pw_uid)
            self.assertEqual(os.stat(env.state).st_uid, user.pw_uid)
            st = d.status()
            self.assertEqual(st["state"], "login_required")
            d.stop(timeout=1.0)

    def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            env.write_config(profiles={"default": {}, "second": {"token_file": env.path("second-token")}})
            ready_before = len(d.notify.fields("READY"))
            d.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: len(d.notify.fields("READY")) > ready_before, 5, "READY=1 after the reload")
            self.assertIn("1", d.notify.fields("RELOADING"))
            names = [p["name"] for p in d.request({"op": "profiles"})["profiles"]]
            self.assertEqual(sorted(names), ["default", "second"])

            with open(env.config_path, "a") as f:
                f.write("bogus_key = 1\n[profile bad name]\ntenant = x\n")
            ready_before = len(d.notify.fields("READY"))
            d.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: len(d.notify.fields("READY")) > ready_before, 5, "READY=1 after the failed reload")
            log = d.log()
            self.assertIn("keeping the running one", log)
            self.assertIn("%s:" % env.config_path, log)
            self.assertGreaterEqual(log.count(env.config_path + ":"), 2, "every problem is logged")
            names = [p["name"] for p in d.request({"op": "profiles"})["profiles"]]
            self.assertEqual(sorted(names), ["default", "second"])
            d.stop()

    def test_tokenctl_reload(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon()
            env.write_config(profiles={"default": {}, "third": {"token_file": env.path("third-token")}})
            r = d.ctl("reload")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = d.ctl("profiles")
            self.assertIn("third", r.stdout)
            with open(env.config_path, "a") as f:
                f.write("refresh_before = whenever\n")
            r = d.ctl("reload")
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s:" % env.config_path, r.stderr)
            self.assertIn("third", d.ctl("profiles").stdout)
            d.stop()

    def test_reload_removing_a_profile_someone_waits_on(self):
        # The removed profile's waiter is answered from inside the reload; STATUS= is then
        # computed over the new list (a use-after-free here once, caught by valgrind).
        with Env() as env:
            idp = env.start_idp()
            env.write_config(profiles={"default": {}, "gone": {"token_file": env.path("gone-token")}})
            d = env.start_daemon()
            waiting = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "--profile", "gone", "login"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_until(idp.pending_device_codes, 10, "the sign-in to start")
            env.write_config(profiles={"default": {}})
            r = d.ctl("reload")
            self.assertEqual(r.returncode, 0, r.stderr)
            out, err = waiting.communicate(timeout=10)
            env.client_stderr.append(err)
            self.assertNotEqual(waiting.returncode, 0)
            self.assertEqual([p["name"] for p in d.request({"op": "profiles"})["profiles"]], ["default"])
            wait_until(lambda: d.status_text() == "default: login_required", 5, "STATUS= without the removed profile")
            d.stop()

    def test_watchdog_is_kept(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            d = env.start_daemon(env={"WATCHDOG_USEC": "400000"})
            # WATCHDOG_PID unset means "this process": pings at about half the interval.
            wait_until(lambda: len(d.notify.fields("WATCHDOG")) >= 3, 5, "three WATCHDOG=1 pings")
            d.stop()

    def test_journal_prefixes_when_stderr_is_the_journal(self):
        with Env() as env:
            env.start_idp()
            env.write_config()
            log_path = env.path("daemon1.log")
            open(log_path, "w").close()
            st = os.stat(log_path)
            d = env.start_daemon(env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
            d.stop()
            lines = [l for l in d.log().splitlines() if l]
            self.assertTrue(lines)
            for l in lines:
                self.assertRegex(l, r"^<[0-7]>")
            self.assertTrue(any(l.startswith("<6>") for l in lines))

    def test_log_level_from_the_configuration(self):
        with Env() as env:
            env.start_idp()
            env.write_config(daemon={"log_level": "warning"})
            d = env.start_daemon()
            d.request({"op": "status"})
            d.stop()
            self.assertNotIn("serving", d.log())

    def test_bad_configuration_exits_78(self):
        with Env() as env:
            env.write_config(raw="[daemon]\nlog_level = loud\n[profile default]\nrefresh_before = soon\n")
            p = subprocess.run([harness.TOKEND, "--allow-root", "--config", env.config_path], capture_output=True,
                               text=True, env=env.daemon_environment(), timeout=10)
            self.assertEqual(p.returncode, 78)
            self.assertIn("%s:2:" % env.config_path, p.stderr)
            self.assertIn("%s:4:" % env.config_path, p.stderr)
            self.assertIn("tenant", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
