"""Refresh tokens sealed at rest, on a workstation: state_protection with a key from
$CREDENTIALS_DIRECTORY (what systemd's LoadCredentialEncrypted= gives; test_pid1 covers the
template under a real systemd), and from a real Secret Service: a D-Bus session bus of the test's
own with Debian's gnome-keyring-daemon, unlocked with a password on stdin, looked into with
secret-tool. Checks that no token the identity provider issued is on disk, that a restart keeps
the sign-in, that another key or no key means login_required (logged and notified, the sealed
file left as it was), and that auto falls back to none (doctor warns) when the keyring is locked
or absent."""

import json
import os
import shutil
import signal
import subprocess
import time
import unittest

import harness
from harness import Env, wait_until

USER = "alice@contoso.com"
KEY_ATTRS = ["application", "aksspark-tokend", "purpose", "state-key"]


def state_file(env, profile="default"):
    return os.path.join(env.state, profile + ".json")


def assert_no_token_on_disk(test, env, top):
    for d, _, fs in os.walk(top):
        for f in fs:
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            for s in env.secrets():
                test.assertNotIn(s.encode(), data, "a token in clear in %s" % os.path.join(d, f))


class SessionBus:
    """A D-Bus session bus of this test's own (dbus-daemon --session, as dbus-run-session
    starts), with gnome-keyring-daemon's Secret Service on it when asked."""

    def __init__(self, env, activatable=None):
        """activatable: a command D-Bus activation runs for org.freedesktop.secrets (else none)."""
        self.env = env
        self.dir = env.path("session")
        os.makedirs(self.dir, mode=0o700)
        self.path = os.path.join(self.dir, "bus")
        self.address = "unix:path=" + self.path
        self.keyring = None
        # No service directories: nothing is activated behind the test's back (Debian's
        # gnome-keyring registers org.freedesktop.secrets for D-Bus activation).
        services = env.path("services")
        if activatable:
            os.makedirs(os.path.join(services, "dbus-1", "services"))
            with open(os.path.join(services, "dbus-1", "services", "org.freedesktop.secrets.service"), "w") as f:
                f.write("[D-BUS Service]\nName=org.freedesktop.secrets\nExec=%s\n" % activatable)
        bus_env = dict(self.environment(), XDG_DATA_DIRS=services, XDG_DATA_HOME=services)
        self.bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                     "--address=" + self.address], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=bus_env)
        wait_until(lambda: os.path.exists(self.path), 10, "the session bus")

    def environment(self):
        return {"DBUS_SESSION_BUS_ADDRESS": self.address, "HOME": self.env.home,
                "XDG_RUNTIME_DIR": self.env.runtime,
                "XDG_DATA_HOME": os.path.join(self.env.home, ".local", "share"),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def start_keyring(self, password="correct horse"):
        self.log = open(os.path.join(self.dir, "keyring.log"), "wb")
        self.keyring = subprocess.Popen(["gnome-keyring-daemon", "--unlock", "--components=secrets",
                                         "--foreground"], stdin=subprocess.PIPE, stdout=self.log,
                                        stderr=self.log, env=self.environment())
        self.keyring.stdin.write(password.encode())
        self.keyring.stdin.close()
        wait_until(lambda: self.call("ReadAlias", "s", "default").returncode == 0 and
                   "collection" in self.call("ReadAlias", "s", "default").stdout, 10, "the login keyring")

    def call(self, method, *args):
        return subprocess.run(["busctl", "--user", "call", "org.freedesktop.secrets", "/org/freedesktop/secrets",
                               "org.freedesktop.Secret.Service", method] + list(args),
                              capture_output=True, text=True, env=self.environment(), timeout=10)

    def lock(self):
        p = self.call("Lock", "ao", "1", "/org/freedesktop/secrets/collection/login")
        assert p.returncode == 0, p.stderr

    def lookup_key(self):
        p = subprocess.run(["secret-tool", "lookup"] + KEY_ATTRS, capture_output=True,
                           env=self.environment(), timeout=10)
        return p.stdout if p.returncode == 0 else None

    def close(self):
        for p in (self.keyring, self.bus):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.keyring is not None:
            self.log.close()


def have(*programs):
    return all(shutil.which(p) for p in programs)


class CredentialKeyTest(unittest.TestCase):
    """The key systemd hands the service in $CREDENTIALS_DIRECTORY/state-key."""

    def make_credential(self, env, name, data):
        d = env.path(name)
        os.makedirs(d, mode=0o700)
        with open(os.path.join(d, "state-key"), "wb") as f:
            f.write(data)
        return d

    def test_sealed_restart_and_another_key(self):
        with Env() as env:
            idp = env.start_idp(lifetime=60)
            notes = env.path("notes")
            env.write_config(daemon={"notify_command": "echo \"$AKSSPARK_PROFILE $AKSSPARK_STATE\" >> %s" % notes})
            creds = self.make_credential(env, "creds", os.urandom(32))
            d = env.start_daemon(env={"CREDENTIALS_DIRECTORY": creds})
            d.sign_in(idp, user=USER)
            wait_until(lambda: os.path.exists(state_file(env)) and '"version": 2' in harness.read(state_file(env)),
                       10, "a sealed state file")
            self.assertEqual(d.status()["store"]["protection"], "systemd-creds")
            rts = idp.valid_refresh_tokens(USER)
            self.assertTrue(rts)
            text = harness.read(state_file(env))
            for rt in rts:
                self.assertNotIn(rt, text)
            assert_no_token_on_disk(self, env, env.state)
            self.assertEqual(os.stat(state_file(env)).st_mode & 0o777, 0o600)
            d.stop()

            # A restart with the same key: no new sign-in.
            codes = len(idp.pending_device_codes()) + len(idp.requests("devicecode"))
            d = env.start_daemon(env={"CREDENTIALS_DIRECTORY": creds})
            self.assertEqual(d.status()["state"], "valid")
            self.assertEqual(len(idp.pending_device_codes()) + len(idp.requests("devicecode")), codes)
            d.stop()
            sealed = harness.read(state_file(env))

            # Another key (the state directory on another machine): login_required, logged and
            # notified; the file stays as it was, sealed.
            os.unlink(notes) if os.path.exists(notes) else None
            other = self.make_credential(env, "other", os.urandom(32))
            d = env.start_daemon(env={"CREDENTIALS_DIRECTORY": other})
            self.assertEqual(d.status()["state"], "login_required")
            d.wait_log("does not open with the key at hand")
            wait_until(lambda: os.path.exists(notes) and "default login_required" in harness.read(notes), 10,
                       "notify_command told of login_required")
            self.assertEqual(harness.read(state_file(env)), sealed)
            d.stop()

            # No key at all while state_protection says systemd-creds: no crash, login_required,
            # and a new sign-in is not written in clear (the save is refused and retried).
            env.write_config(daemon={"state_protection": "systemd-creds"})
            bad = self.make_credential(env, "short", os.urandom(31))
            d = env.start_daemon(env={"CREDENTIALS_DIRECTORY": bad})
            st = d.status()
            self.assertEqual((st["state"], st["store"]["protection"], st["store"]["key_missing"]),
                             ("login_required", "systemd-creds", True), st)
            d.wait_log("its key cannot be had")
            d.sign_in(idp, user=USER)
            wait_until(lambda: d.status()["store"]["ok"] is False, 10, "the refused save")
            self.assertEqual(harness.read(state_file(env)), sealed, "a clear copy was written")
            self.assertIn("its key is missing", d.ctl("status").stdout)
            d.stop()

    def test_clear_file_is_sealed_at_the_next_start(self):
        with Env() as env:
            idp = env.start_idp(lifetime=60)
            env.write_config()
            d = env.start_daemon()
            d.sign_in(idp, user=USER)
            self.assertEqual(d.status()["store"]["protection"], "none")
            wait_until(lambda: os.path.exists(state_file(env)), 10, "the state file")
            self.assertIn('"version": 1', harness.read(state_file(env)))
            self.assertIn("refresh_token", harness.read(state_file(env)))
            d.stop()

            creds = self.make_credential(env, "creds", os.urandom(32))
            d = env.start_daemon(env={"CREDENTIALS_DIRECTORY": creds})
            wait_until(lambda: '"version": 2' in harness.read(state_file(env)), 10, "the file sealed")
            self.assertEqual(d.status()["state"], "valid")
            assert_no_token_on_disk(self, env, env.state)
            d.stop()


class KeyringTest(unittest.TestCase):
    """A desktop-like session: the key in gnome-keyring's Secret Service."""

    def setUp(self):
        if not have("dbus-daemon", "gnome-keyring-daemon", "secret-tool", "busctl"):
            self.fail("dbus-daemon, gnome-keyring-daemon, secret-tool and busctl are needed "
                      "(scripts/install-deps.sh installs them)")

    def test_keyring_seals_and_survives_a_restart(self):
        with Env() as env:
            bus = SessionBus(env)
            try:
                bus.start_keyring()
                idp = env.start_idp(lifetime=60)
                env.write_config(daemon={"state_protection": "keyring"})
                e = bus.environment()
                d = env.start_daemon(env=e)
                d.sign_in(idp, user=USER)
                wait_until(lambda: os.path.exists(state_file(env)) and
                           '"version": 2' in harness.read(state_file(env)), 10, "a sealed state file")
                self.assertEqual(d.status()["store"]["protection"], "keyring")
                key = bus.lookup_key()
                self.assertIsNotNone(key, "no key item in the keyring")
                self.assertEqual(len(key), 32)
                assert_no_token_on_disk(self, env, env.state)
                d.stop()

                # auto finds the same key again after a restart: no new sign-in.
                env.write_config()
                codes = len(idp.requests("devicecode"))
                d = env.start_daemon(env=e)
                st = d.status()
                self.assertEqual((st["state"], st["store"]["protection"]), ("valid", "keyring"), st)
                self.assertEqual(len(idp.requests("devicecode")), codes)
                self.assertEqual(bus.lookup_key(), key, "a second key was made")
                p = d.ctl("--config", env.config_path, "doctor")
                self.assertIn("ok   profile default: state protection: keyring", p.stdout)
                d.stop()

                # Locked (a headless session after the desktop locked it): auto falls back to
                # none, the sealed file cannot be read: login_required, doctor warns.
                bus.lock()
                d = env.start_daemon(env=e)
                st = d.status()
                self.assertEqual((st["state"], st["store"]["protection"]), ("login_required", "none"), st)
                d.wait_log("its key (state_protection) is not at hand")
                p = d.ctl("--config", env.config_path, "doctor")
                self.assertIn("warn profile default: state protection: none", p.stdout)
                d.stop()
            finally:
                bus.close()

    def test_auto_without_a_secret_service_is_none_quickly(self):
        with Env() as env:
            # A bus where nobody owns org.freedesktop.secrets, but one could be activated: auto
            # asks only a service that runs (a headless session's would be locked and linger).
            marker = env.path("activated")
            bus = SessionBus(env, activatable="/usr/bin/touch %s" % marker)
            try:
                idp = env.start_idp(lifetime=60)
                env.write_config()
                e = bus.environment()
                start = time.monotonic()
                d = env.start_daemon(env=e)
                took = time.monotonic() - start
                st = d.status()
                self.assertEqual(st["store"]["protection"], "none", st)
                self.assertLess(took, 5.0)
                d.sign_in(idp, user=USER)
                wait_until(lambda: os.path.exists(state_file(env)), 10, "the state file")
                self.assertIn('"version": 1', harness.read(state_file(env)))
                self.assertFalse(os.path.exists(marker), "auto started a Secret Service")
                self.assertIn("warn profile default: state protection: none", d.ctl("--config", env.config_path, "doctor").stdout)
                d.stop()
            finally:
                bus.close()

    def test_a_secret_service_that_hangs_costs_at_most_the_timeout(self):
        with Env() as env:
            bus = SessionBus(env)
            try:
                bus.start_keyring()
                env.start_idp(lifetime=60)
                env.write_config()
                bus.keyring.send_signal(signal.SIGSTOP)   # owns the name, answers nothing
                try:
                    start = time.monotonic()
                    d = env.start_daemon(env=bus.environment())
                    took = time.monotonic() - start
                    self.assertEqual(d.status()["store"]["protection"], "none")
                    # One deadline of 2 s for the whole exchange, not one per call.
                    self.assertGreaterEqual(took, 1.9)
                    self.assertLess(took, 4.0)
                    d.wait_log("Connection timed out")
                    d.stop()
                finally:
                    bus.keyring.send_signal(signal.SIGCONT)
            finally:
                bus.close()


if __name__ == "__main__":
    unittest.main()
