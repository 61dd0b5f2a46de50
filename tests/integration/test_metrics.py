"""Metrics for operators: `aksspark-tokenctl metrics`, the `metrics` socket op and the
metrics_file, read back through a real parser of the Prometheus text format (Debian's
python3-prometheus-client), with the values checked against `status` and what happened."""

import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import Env, wait_until

# python3-prometheus-client is a Debian package: its module is in Debian's dist-packages, which a
# python3 of another origin (pyenv, a venv) does not search by itself.
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

RULES = os.path.join(harness.SOURCE, "conf", "prometheus", "aksspark-tokend.rules.yml")
USER = pwd.getpwuid(os.getuid()).pw_name
OTHER_USER = "aksspark-it"
STATES = ("valid", "refreshing", "login_required", "expired", "error")
RESULTS = ("ok", "transient", "login_required", "config_error")


def parse(text):
    """({sample name: {frozenset(labels): value}}, {sample name: family type}); the parser
    raises on anything that is not valid exposition. Keyed by sample name, since the parser
    names a counter's family without its _total."""
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            series = samples.setdefault(s.name, {})
            key = frozenset(s.labels.items())
            if key in series:
                raise AssertionError("duplicate series %s %s" % (s.name, s.labels))
            series[key] = s.value
            types[s.name] = fam.type
    return samples, types


def value(families, family, **labels):
    labels.setdefault("user", USER)  # the daemon's user
    samples = families.get(family)
    if samples is None:
        raise AssertionError("no family %s in %s" % (family, sorted(families)))
    return samples.get(frozenset(labels.items()))


class MetricsTest(unittest.TestCase):
    def metrics(self, d):
        p = d.ctl("metrics")
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_exposition_values_file_and_op(self):
        with Env() as env:
            idp = env.start_idp(lifetime=600)
            # A path with a quote and a backslash: label escaping, read back by the parser.
            odd_dir = env.path('we"ird\\dir')
            os.makedirs(odd_dir)
            props = os.path.join(odd_dir, "spark.properties")
            # A spark.properties below a regular file cannot be written: an output failing.
            blocker = env.path("blocker")
            with open(blocker, "w") as f:
                f.write("x")
            broken = os.path.join(blocker, "spark.properties")
            metrics_file = env.path("textfile", "collector", "tokend.prom")
            env.write_config(daemon={"metrics_file": metrics_file},
                             profiles={"default": {"spark_properties": [props, broken]},
                                       "prod": {"token_file": env.path("prod-token")}})
            d = env.start_daemon()
            token_file = os.path.join(env.home, ".kube", "oauthToken")

            fams, types = parse(self.metrics(d))
            self.assertEqual(value(fams, "aksspark_tokend_build_info", version=harness_version(d)), 1)
            self.assertEqual(types["aksspark_tokend_refreshes_total"], "counter")
            for name in ("default", "prod"):
                for s in STATES:
                    self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile=name, state=s),
                                     1 if s == "login_required" else 0, (name, s))
                for r in RESULTS:
                    self.assertEqual(value(fams, "aksspark_tokend_refreshes_total", profile=name, result=r), 0)
            # Nothing of a token yet.
            self.assertEqual(fams.get("aksspark_tokend_token_expiry_timestamp_seconds", {}), {})
            self.assertEqual(fams.get("aksspark_tokend_output_ok", {}), {})
            start = value(fams, "aksspark_tokend_start_time_seconds")
            self.assertIsNotNone(start)

            d.sign_in(idp)
            st = d.status()
            fams, _ = parse(self.metrics(d))
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile="default", state="valid"), 1)
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile="default", state="login_required"), 0)
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile="prod", state="login_required"), 1)
            self.assertEqual(value(fams, "aksspark_tokend_token_expiry_timestamp_seconds", profile="default"),
                             st["expires_on"])
            self.assertEqual(value(fams, "aksspark_tokend_output_ok", profile="default", path=token_file,
                                   kind="token_file"), 1)
            self.assertEqual(value(fams, "aksspark_tokend_output_ok", profile="default", path=props,
                                   kind="spark_properties"), 1)
            self.assertEqual(value(fams, "aksspark_tokend_output_ok", profile="default", path=broken,
                                   kind="spark_properties"), 0)
            self.assertIsNone(value(fams, "aksspark_tokend_output_last_success_timestamp_seconds",
                                    profile="default", path=broken, kind="spark_properties"))
            written = {o["path"]: o["last_write"] for o in st["outputs"]}
            self.assertEqual(value(fams, "aksspark_tokend_output_last_write_timestamp_seconds", profile="default",
                                   path=broken, kind="spark_properties"), written[broken])
            self.assertEqual(value(fams, "aksspark_tokend_output_last_success_timestamp_seconds", profile="default",
                                   path=token_file, kind="token_file"), written[token_file])
            # A sign-in is not a refresh.
            self.assertEqual(value(fams, "aksspark_tokend_refreshes_total", profile="default", result="ok"), 0)

            # Refreshes by result: the forced one ok, then a 503 (transient) and the retry the
            # daemon makes by itself (ok).
            d.ctl("refresh")
            idp.queue_fault("503")
            self.assertEqual(d.ctl("refresh").returncode, 1)

            def counted(ok, transient):
                f, _ = parse(self.metrics(d))
                return (value(f, "aksspark_tokend_refreshes_total", profile="default", result="ok") == ok and
                        value(f, "aksspark_tokend_refreshes_total", profile="default", result="transient") == transient)
            wait_until(lambda: counted(2, 1), 30, "one failed and two good refreshes counted")
            st = d.status()
            fams, _ = parse(self.metrics(d))
            self.assertEqual(value(fams, "aksspark_tokend_last_refresh_timestamp_seconds", profile="default"),
                             st["last_refresh"])
            self.assertEqual(value(fams, "aksspark_tokend_start_time_seconds"), start)

            # The file holds the same text, rewritten on the change; mode 0644 in a 0755
            # directory that the daemon made, for node_exporter running as another user.
            def file_shows(result, n):
                try:
                    f, _ = parse(harness.read(metrics_file))
                except FileNotFoundError:
                    return False
                return value(f, "aksspark_tokend_refreshes_total", profile="default", result=result) == n
            wait_until(lambda: file_shows("ok", 2), 10, "the metrics file counts the refreshes")
            self.assertEqual(stat.S_IMODE(os.stat(metrics_file).st_mode), 0o644)
            for dir_ in (os.path.dirname(metrics_file), os.path.dirname(os.path.dirname(metrics_file))):
                self.assertEqual(stat.S_IMODE(os.stat(dir_).st_mode), 0o755, dir_)
            self.assertEqual(parse(harness.read(metrics_file))[0], parse(self.metrics(d))[0])
            self.assertEqual([n for n in os.listdir(os.path.dirname(metrics_file))], ["tokend.prom"])

            # A refresh token the identity provider refuses: login_required, counted.
            idp.revoke("alice@contoso.com")
            self.assertEqual(d.ctl("refresh").returncode, 2)
            wait_until(lambda: file_shows("login_required", 1), 10, "the metrics file counts the refused refresh")
            fams, _ = parse(harness.read(metrics_file))
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile="default", state="login_required"), 1)
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile="default", state="valid"), 0)

            # The socket op answers JSON around the text.
            a = d.request({"op": "metrics"})
            self.assertIs(a["ok"], True)
            self.assertEqual(a["content_type"], "text/plain; version=0.0.4; charset=utf-8")
            self.assertEqual(parse(a["metrics"])[0], parse(self.metrics(d))[0])
            p = d.ctl("metrics", "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith('{"ok":true'), p.stdout[:100])

            # Stopped, the daemon takes its figures away: they would go stale.
            d.stop()
            self.assertFalse(os.path.exists(metrics_file))
            # And the client says so with the contract's exit code for an unreachable daemon.
            p = d.ctl("metrics")
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertEqual(p.stdout, "")

    def test_environment_wins_and_unwritable_file_is_not_fatal(self):
        with Env() as env:
            env.start_idp(lifetime=600)
            from_config = env.path("config.prom")
            from_env = env.path("opt", "option.prom")
            env.write_config(daemon={"metrics_file": from_config})
            d = env.start_daemon(env={"AKSSPARK_TOKEND_METRICS_FILE": from_env})
            wait_until(lambda: os.path.exists(from_env), 10, "the $AKSSPARK_TOKEND_METRICS_FILE")
            self.assertFalse(os.path.exists(from_config))
            fams, _ = parse(harness.read(from_env))
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", profile="default", state="login_required"), 1)
            d.stop()
            self.assertFalse(os.path.exists(from_env))

            # A path that cannot be written: a warning, the daemon serves on.
            blocker = env.path("blocker")
            with open(blocker, "w") as f:
                f.write("x")
            env.write_config(daemon={"metrics_file": os.path.join(blocker, "m.prom")})
            d = env.start_daemon()
            d.wait_log("Failed to write the metrics file")
            self.assertEqual(d.ctl("metrics").returncode, 0)
            self.assertIs(d.status()["ok"], True)
            d.stop()

    @unittest.skipUnless(harness.IS_ROOT, "needs root to create and become a test user")
    def test_jump_host_layout(self):
        """The template's layout, without systemd: root's symlink USER.prom in a root-owned
        directory, pointing into the person's own runtime directory. The daemon, as the person,
        replaces the target atomically and removes it on stop; the person cannot write into the
        shared directory."""
        user = harness.ensure_user(OTHER_USER)
        with Env() as env:
            env.start_idp(lifetime=600)
            env.write_config()
            shared = env.path("run-aksspark", "metrics")
            own = env.path("run-aksspark", "metrics.d", user.pw_name)
            os.makedirs(shared, mode=0o755)
            os.makedirs(own, mode=0o755)
            os.chown(own, user.pw_uid, user.pw_gid)
            link = os.path.join(shared, user.pw_name + ".prom")
            os.symlink("../metrics.d/%s/metrics.prom" % user.pw_name, link)
            target = os.path.join(own, "metrics.prom")

            d = env.start_daemon_as(user, env={"AKSSPARK_TOKEND_METRICS_FILE": link})
            wait_until(lambda: os.path.exists(target), 10, "the metrics behind the symlink")
            self.assertTrue(os.path.islink(link))
            st = os.stat(target)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (user.pw_uid, 0o644))
            fams, _ = parse(harness.read(link))
            self.assertEqual(value(fams, "aksspark_tokend_profile_state", user=user.pw_name, profile="default",
                                   state="login_required"), 1)
            self.assertEqual(os.listdir(own), ["metrics.prom"])
            # The person cannot publish a file under another name in the shared directory.
            p = subprocess.run(["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid, "--init-groups",
                                "--", "touch", os.path.join(shared, "root.prom")], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            d.stop()
            self.assertFalse(os.path.exists(target))
            self.assertTrue(os.path.islink(link))

    @unittest.skipUnless(harness.IS_ROOT, "needs root to create and become test users")
    def test_all_labels_from_the_kernel_and_silent_instances_down(self):
        """metrics --all (root) over a directory of instance sockets: a real daemon run as one
        person; another person's fake daemon answering with series labelled as the first one
        (and as an up series of its own); one that never answers, one that answers endlessly, a
        FIFO and a link to /dev/zero named like sockets. Every series carries the user the kernel
        says answered; the silent ones are down within about a second; --output is replaced
        atomically, 0644, root's."""
        bob = harness.ensure_user(OTHER_USER)
        instances = None
        with Env() as env, PerRunUser() as mallory:
            instances = env.path("instances")
            os.mkdir(instances)
            os.chmod(instances, 0o1777)   # so that each person's daemon may make its socket here
            env.start_idp(lifetime=600)
            env.socket_path = os.path.join(instances, bob.pw_name + ".sock")
            env.write_config()
            d = env.start_daemon_as(bob)

            forged = ("# TYPE aksspark_tokend_token_expiry_timestamp_seconds gauge\n"
                      "aksspark_tokend_token_expiry_timestamp_seconds{user=\"%s\",profile=\"default\"} 4102444800\n"
                      "aksspark_tokend_up{user=\"%s\"} 1\n" % (bob.pw_name, bob.pw_name))
            fake = subprocess.Popen(
                ["setpriv", "--reuid=%d" % mallory.pw_uid, "--regid=%d" % mallory.pw_gid, "--clear-groups", "--",
                 sys.executable, "-c", FAKE_INSTANCE, os.path.join(instances, "x.sock"), forged],
                stdout=subprocess.PIPE)
            silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            endless = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.assertEqual(fake.stdout.readline().strip(), b"listening")
                silent.bind(os.path.join(instances, "silent.sock"))
                silent.listen(8)                         # never accepts, never answers
                os.chown(os.path.join(instances, "silent.sock"), 65534, 65534)
                endless.bind(os.path.join(instances, "endless.sock"))
                endless.listen(8)
                stop = threading.Event()
                threading.Thread(target=serve_endlessly, args=(endless, stop), daemon=True).start()
                os.mkfifo(os.path.join(instances, "fifo.sock"))
                os.symlink("/dev/zero", os.path.join(instances, "zero.sock"))

                out = env.path("prom", "aksspark-tokend.prom")
                os.mkdir(os.path.dirname(out), 0o755)
                for attempt in range(2):
                    start = time.monotonic()
                    p = subprocess.run([harness.TOKENCTL, "--socket", instances, "metrics", "--all", "--output", out],
                                       capture_output=True, text=True, timeout=30)
                    took = time.monotonic() - start
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertLess(took, 2.5, "metrics --all waited on a silent instance")
                st = os.stat(out)
                self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o644))
                text = harness.read(out)
                fams, _ = parse(text)
                up = fams["aksspark_tokend_up"]
                self.assertEqual(up[frozenset({"user": bob.pw_name}.items())], 1, text)
                self.assertEqual(up[frozenset({"user": mallory.pw_name}.items())], 1, text)
                self.assertEqual(up[frozenset({"user": "nobody"}.items())], 0, text)
                self.assertEqual(up[frozenset({"user": "root"}.items())], 0, text)
                self.assertEqual(len(up), 4, text)
                # What mallory claimed for bob is hers; bob's own series are his daemon's.
                expiry = fams["aksspark_tokend_token_expiry_timestamp_seconds"]
                self.assertEqual(expiry, {frozenset({"user": mallory.pw_name, "profile": "default"}.items()): 4102444800},
                                 text)
                self.assertEqual(value(fams, "aksspark_tokend_profile_state", user=bob.pw_name, profile="default",
                                       state="login_required"), 1)
                for line in text.splitlines():
                    if line.startswith("aksspark_") and "4102444800" in line:
                        self.assertIn('user="%s"' % mallory.pw_name, line)
                # Without --output: the same exposition on stdout.
                p = subprocess.run([harness.TOKENCTL, "--socket", instances, "metrics", "--all"], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                parse(p.stdout)
                self.assertIn('aksspark_tokend_up{user="%s"} 1' % bob.pw_name, p.stdout)
                stop.set()
            finally:
                fake.kill()
                fake.wait()
                fake.stdout.close()
                silent.close()
                endless.close()
            d.stop()

    def test_alert_rules_use_exported_names(self):
        """The rules file names only series the daemon exports (a renamed metric would leave an
        alert that never fires)."""
        with Env() as env:
            env.start_idp(lifetime=600)
            env.write_config()
            d = env.start_daemon()
            d.sign_in(env.idp)
            _, types = parse(self.metrics(d))
            text = harness.read(RULES)
            used = set(re.findall(r"\baksspark_tokend_[a-z_]+", text))
            self.assertGreaterEqual(len(used), 3, used)
            for name in used:
                self.assertIn(name, types, "the rules use %s, which the daemon does not export" % name)
            for alert in ("AkssparkTokenExpiresSoon", "AkssparkLoginRequired", "AkssparkOutputFailing"):
                self.assertIn("alert: " + alert, text)
            d.stop()


# A person's fake instance: answers every metrics request with the text it was given.
FAKE_INSTANCE = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.recv(4096)
    import json
    c.sendall((json.dumps({"ok": True, "metrics": sys.argv[2]}) + "\n").encode())
    c.close()
"""


def serve_endlessly(listener, stop):
    """Accept and send zero bytes without end (as /dev/zero would), until stop."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = listener.accept()
        except (socket.timeout, OSError):
            continue
        threading.Thread(target=_zeros, args=(c, stop), daemon=True).start()


def _zeros(c, stop):
    try:
        while not stop.is_set():
            c.sendall(b"\0" * 65536)
    except OSError:
        pass
    finally:
        c.close()


class PerRunUser:
    """A local user made for this run only (useradd), removed again (userdel) at the end."""

    def __enter__(self):
        self.name = "aksm%s" % os.urandom(4).hex()
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", self.name],
                       check=True, capture_output=True)
        self.pw = pwd.getpwnam(self.name)
        return self.pw

    def __exit__(self, *exc):
        subprocess.run(["userdel", self.name], capture_output=True)


def harness_version(d):
    return d.request({"op": "version"})["version"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
