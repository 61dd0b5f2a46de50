"""`aksspark-tokenctl doctor` against each failure it names, and `ok` on a healthy setup: no
configuration, the daemon stopped (no socket, or a socket nobody listens on), someone else's
socket (a per-run local user), an untrusted certificate (the local provider's CA not given), a
clock 10 minutes off (the provider's Date header shifted), an output directory the user may not
write, a symlinked output the daemon would refuse, a profile that needs a sign-in. One line per
check, exit 0 only when nothing failed, and never a secret on its output."""

import os
import pwd
import re
import socket
import subprocess
import unittest

import harness
from harness import Env

TEST_USER = "aksdoc%d" % (os.getpid() % 100000)


def lines(p):
    return p.stdout.splitlines()


class DoctorTest(unittest.TestCase):
    user = None

    @classmethod
    def tearDownClass(cls):
        if cls.user:
            subprocess.run(["userdel", "--remove", TEST_USER], capture_output=True)

    @classmethod
    def make_test_user(cls):
        if not harness.IS_ROOT:
            raise AssertionError("these tests need root (to make a test user); CI runs them as root")
        if not cls.user:
            cls.user = harness.ensure_user(TEST_USER)
        return cls.user

    def setUp(self):
        self.env = Env(prefix="aksspark-it-doctor-")
        self.env.__enter__()
        os.chmod(self.env.root, 0o755)

    def tearDown(self):
        self.env.__exit__(None, None, None)

    def doctor(self, *args, config=None, socket_path=None, as_user=None, env=None):
        e = self.env.daemon_environment(env)
        e.pop("AKSSPARK_TOKEND_SOCKET", None)
        argv = [harness.TOKENCTL, "--socket", socket_path or self.env.socket_path, "doctor",
                "--config", config or self.env.config_path] + list(args)
        if as_user:
            e["HOME"] = as_user.pw_dir
            e.pop("XDG_RUNTIME_DIR", None)
            argv = ["setpriv", "--reuid=%d" % as_user.pw_uid, "--regid=%d" % as_user.pw_gid, "--clear-groups",
                    "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=e)
        # The harness scans these for every secret the provider issued.
        self.env.client_stderr += [p.stdout, p.stderr]
        for line in lines(p):
            self.assertRegex(line, r"^(ok  |warn|fail) [a-z][^:]*: ", "not one verdict per line: %r" % p.stdout)
        self.assertEqual(p.returncode, 1 if any(l.startswith("fail") for l in lines(p)) else 0, p.stdout + p.stderr)
        return p

    def line(self, p, check):
        found = [l for l in lines(p) if l[5:].startswith(check + ":")]
        self.assertEqual(len(found), 1, "no line for %r in:\n%s" % (check, p.stdout))
        return found[0]

    def assertLine(self, p, check, verdict, *texts):
        l = self.line(p, check)
        self.assertTrue(l.startswith(verdict), l)
        for t in texts:
            self.assertIn(t, l)
        return l

    def healthy(self, **profile):
        idp = self.env.start_idp(lifetime=600)
        keys = {"token_file": os.path.join(self.env.home, ".kube", "oauthToken")}
        keys.update(profile)
        self.env.write_config(profiles={"default": keys})
        # Healthy includes a sealed state directory: a state key as systemd would pass one.
        creds = self.env.path("credentials")
        os.makedirs(creds, mode=0o700)
        with open(os.path.join(creds, "state-key"), "wb") as f:
            f.write(os.urandom(32))
        d = self.env.start_daemon(env={"CREDENTIALS_DIRECTORY": creds})
        return idp, d

    def test_healthy(self):
        idp, d = self.healthy()
        d.sign_in(idp)
        p = self.doctor()
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertTrue(all(l.startswith("ok") for l in lines(p)), p.stdout)
        self.assertLine(p, "configuration", "ok", self.env.config_path, "parses (1 profile)")
        self.assertLine(p, "daemon", "ok", "answers on %s" % self.env.socket_path)
        self.assertLine(p, "profile default: authority", "ok", "127.0.0.1:%d" % idp.port,
                        "answers TLS with a trusted certificate (HTTP 200)")
        self.assertLine(p, "profile default: clock", "ok", "within")
        self.assertLine(p, "profile default: token_file", "ok", "can be written")
        self.assertLine(p, "profile default: state", "ok", "valid, signed in as alice@contoso.com", "left")
        self.assertLine(p, "profile default: state protection", "ok", "systemd-creds", "sealed")
        # It went to the configured provider, to the public discovery document only.
        openid = idp.requests("openid")
        self.assertEqual(len(openid), 1)
        self.assertTrue(openid[0]["path"].endswith("/v2.0/.well-known/openid-configuration"))
        # --profile picks one; an unknown one fails.
        p = self.doctor("--profile", "nope")
        self.assertLine(p, "profile", "fail", "no profile nope")

    def test_no_configuration(self):
        p = self.doctor(config=self.env.path("missing.ini"))
        self.assertLine(p, "configuration", "fail", "aksspark-tokenctl init")
        self.env.write_config(raw="[profile default]\ntenant = contoso.onmicrosoft.com\ncolour = blue\n")
        p = self.doctor()
        self.assertLine(p, "configuration", "fail", "unknown key 'colour'", "--check-config")

    def test_daemon_stopped(self):
        self.env.start_idp()
        self.env.write_config()
        p = self.doctor()
        self.assertLine(p, "daemon", "fail", "not started", "systemctl --user enable --now aksspark-tokend.socket")
        self.assertLine(p, "profile default: state", "warn", "the daemon does not answer")
        # A socket left behind that nobody listens on.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.env.socket_path)
        s.close()
        p = self.doctor()
        self.assertLine(p, "daemon", "fail", "nothing listens on %s" % self.env.socket_path)

    def test_someone_elses_socket(self):
        user = self.make_test_user()
        idp, d = self.healthy()
        # The user's own configuration, readable by them; the socket is root's daemon's.
        config = self.env.path("theirs.ini")
        with open(config, "w") as f:
            f.write("[profile default]\ntenant = contoso.onmicrosoft.com\nauthority_host = %s\nca_file = %s\n"
                    "token_file = %s/oauthToken\n" % (idp.url, idp.ca_file, user.pw_dir))
        os.chmod(config, 0o644)
        os.chmod(os.path.dirname(idp.ca_file), 0o755)
        os.chmod(idp.ca_file, 0o644)
        p = self.doctor(config=config, as_user=user)
        self.assertLine(p, "daemon", "fail", "someone else's socket", "belongs to root (uid 0)", "start your own")
        # A socket they may connect to: the daemon itself answers forbidden (SO_PEERCRED).
        os.chmod(self.env.runtime, 0o755)
        os.chmod(self.env.socket_path, 0o666)
        p = self.doctor(config=config, as_user=user)
        self.assertLine(p, "daemon", "fail", "someone else's socket: the daemon on %s (socket of root (uid 0)) does "
                        "not serve you" % self.env.socket_path)

    def test_untrusted_certificate(self):
        self.env.start_idp()
        self.env.write_config(profiles={"default": {"ca_file": ""}})
        p = self.doctor()
        self.assertLine(p, "profile default: authority", "fail", "certificate is not trusted",
                        "set ca_file = <the proxy's CA, PEM> in [profile default]")
        # Given, but not the one that signs it.
        other = self.env.start_idp()
        self.env.write_config(profiles={"default": {"authority_host": self.env.idps[0].url, "ca_file": other.ca_file}})
        p = self.doctor()
        self.assertLine(p, "profile default: authority", "fail", "trusted neither by the system nor by ca_file %s" % other.ca_file)

    def test_clock_off(self):
        idp = self.env.start_idp()
        self.env.write_config()
        for offset, words in ((-600, "10m ahead of"), (600, "10m behind")):
            idp.set(date_offset=offset)
            p = self.doctor()
            self.assertLine(p, "profile default: authority", "ok")
            self.assertLine(p, "profile default: clock", "fail", "this machine's clock is", words,
                            "timedatectl set-ntp true")
        idp.set(date_offset=120)  # within the 5 minutes Azure AD allows
        p = self.doctor()
        self.assertLine(p, "profile default: clock", "ok", "within 2m")

    def test_unwritable_output_directory(self):
        user = self.make_test_user()
        idp = self.env.start_idp()
        locked = self.env.path("locked")
        os.makedirs(locked, mode=0o755)  # root's: the user may not write here
        config = self.env.path("theirs.ini")
        with open(config, "w") as f:
            f.write("[profile default]\ntenant = contoso.onmicrosoft.com\nauthority_host = %s\nca_file = %s\n"
                    "token_file = %s/sub/oauthToken\nspark_properties = %s/spark.properties\n"
                    % (idp.url, idp.ca_file, locked, user.pw_dir))
        os.chmod(config, 0o644)
        os.chmod(os.path.dirname(idp.ca_file), 0o755)
        os.chmod(idp.ca_file, 0o644)
        p = self.doctor(config=config, as_user=user)
        self.assertLine(p, "profile default: token_file", "fail", "%s/sub/oauthToken cannot be written" % locked,
                        "its directory %s (owned by root (uid 0), mode 0755) is not writable by you" % locked)
        self.assertLine(p, "profile default: spark_properties", "ok", "can be written")

    def test_refused_link(self):
        user = self.make_test_user()
        sticky = self.env.path("shared")
        os.makedirs(sticky)
        os.chmod(sticky, 0o1777)
        link = os.path.join(sticky, "oauthToken")
        os.symlink(os.path.join(self.env.home, "token"), link)
        os.lchown(link, user.pw_uid, user.pw_gid)  # someone else's link in /tmp-like directory
        self.env.start_idp()
        self.env.write_config(profiles={"default": {"token_file": link}})
        p = self.doctor()
        self.assertLine(p, "profile default: token_file", "fail",
                        "is a link owned by %s (uid %d) in the sticky, world-writable %s" % (TEST_USER, user.pw_uid, sticky),
                        "fs.protected_symlinks")
        # My own link there is followed.
        os.lchown(link, 0, 0)
        p = self.doctor()
        self.assertLine(p, "profile default: token_file", "ok", "can be written (through its link)")

    def test_needs_sign_in(self):
        idp, d = self.healthy()
        p = self.doctor()
        self.assertLine(p, "daemon", "ok")
        self.assertLine(p, "profile default: state", "fail", "a person must sign in", "aksspark-tokenctl login")


if __name__ == "__main__":
    unittest.main(verbosity=2)
