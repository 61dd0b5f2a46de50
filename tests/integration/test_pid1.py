"""The jump-host template under a real system manager, from the Debian package.

Builds the package from this tree (scripts/build-deb.sh, in a copy under /var/tmp), boots a
real systemd as PID 1 of its own PID and mount namespaces over an overlay root (pid1.py;
never the real root), installs the package there (`apt install ./aksspark-tokend_*.deb`),
creates alice and bob there (their entries exist only in the overlay), and runs
aksspark-tokend@alice and @bob from the installed template and socket against the local
identity provider (listening on the loopback of the system's own network namespace). It checks socket
activation, READY and STATUS, reload, the watchdog, Restart= after kill -9 without a new
sign-in, no restart on exit 78, a quick stop, the isolation of two people (socket mode,
SO_PEERCRED, files, the sandbox), the scheduled-job example from its timer, systemd-analyze
security on the running instance, and the README's workstation steps under a user manager;
then that the run left nothing behind on the host. Needs root (CI is root).

The programs tested are the package's (built with the package's default options, by CI before
the tests when AKSSPARK_DEB_DIR is set, else here), also in the sanitizer pass of CI: the point
here is the installed files under a real PID 1; the sanitizer pass covers the daemon's code
through every other test.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness
import pid1
from harness import Env, wait_until

BUILD_DEB = os.path.join(harness.SOURCE, "scripts", "build-deb.sh")
USERS = {"alice": "alice@contoso.com", "bob": "bob@contoso.com"}
TEMPLATE = "aksspark-tokend@%s.service"
SOCKET = "aksspark-tokend@%s.socket"
DEB_INSIDE = "/root/aksspark-deb"
NIGHTLY = "/usr/share/doc/aksspark-tokend/examples/systemd/spark-nightly"


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def build_package(out):
    """The package: the one CI built before the tests (AKSSPARK_DEB_DIR: nothing compiles beside
    a test there), else built here from this tree."""
    if os.environ.get("AKSSPARK_DEB_DIR"):
        out = os.environ["AKSSPARK_DEB_DIR"]
        print("package: the one built before the tests, in %s" % out, file=sys.stderr)
    else:
        start = time.monotonic()
        p = subprocess.run(["nice", BUILD_DEB, out], capture_output=True, text=True, timeout=900)
        took = time.monotonic() - start
        if p.returncode != 0:
            raise AssertionError("the package did not build: %s%s" % (p.stdout[-3000:], p.stderr[-3000:]))
        print("package: built in %.1fs (%s)" % (took, " ".join(p.stderr.split("\n"))), file=sys.stderr)
    debs = sorted(f for f in os.listdir(out) if re.match(r"aksspark-tokend_.*\.deb$", f))
    if len(debs) != 1:
        raise AssertionError("expected one aksspark-tokend_*.deb, found %s" % os.listdir(out))
    print("package: %s" % " ".join(sorted(f for f in os.listdir(out) if f.endswith(".deb"))), file=sys.stderr)
    return os.path.join(out, debs[0])


def check_safety():
    """The boot script's refusal, before anything boots: / not pivoted (the host's root), an
    overlay without this run's marker, and a dry run that gets as far as exec. Each run must
    also leave nothing behind."""
    results = {}
    for sabotage, expected in (("no-pivot", pid1.REFUSED), ("no-marker", pid1.REFUSED),
                               ("dry-run", pid1.DRY_RUN_OK)):
        p = pid1.Pid1()
        try:
            rc = p.launch(sabotage=sabotage).wait(timeout=60)
            log = p.log()
        finally:
            p.stop()
        left = p.leftovers()
        if rc != expected or left:
            raise AssertionError("safety check %s: exit %s (expected %d), leftovers %s, log:\n%s" %
                                 (sabotage, rc, expected, left, log))
        results[sabotage] = log
    return results


# The boot finds settings that differ from the host's (a sysctl.d file, /etc/hostname): they may
# take effect inside only, never on the host.
PROBE_NAME = "aksspark-pid1-probe"
SYSCTL_PROBE = "/etc/sysctl.d/99-aksspark-pid1-probe.conf"


def probe_sysctl_text():
    with open("/proc/sys/vm/swappiness") as f:
        swappiness = int(f.read())
    return "vm.swappiness = %d\nkernel.domainname = %s\n" % (
        swappiness + 1 if swappiness < 100 else swappiness - 1, PROBE_NAME)


class Pid1Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sys = None
        cls.env = Env(prefix="aksspark-pid1-")
        cls.env.__enter__()
        cls.work = tempfile.mkdtemp(prefix="aksspark-pid1-test-", dir="/var/tmp")
        # Left in the host's /tmp: a boot over the real root would empty it.
        cls.canary = tempfile.NamedTemporaryFile(prefix="aksspark-pid1-canary-", dir="/tmp")
        cls.host_users = {n: cls._host_has_user(n) for n in USERS}
        try:
            cls.safety = check_safety()
            cls.deb = build_package(os.path.join(cls.work, "deb"))
            cls.sys = pid1.Pid1(stage_files={DEB_INSIDE + "/" + os.path.basename(cls.deb): cls.deb,
                                             SYSCTL_PROBE: cls.probe_file("sysctl", probe_sysctl_text()),
                                             "/etc/hostname": cls.probe_file("hostname", PROBE_NAME + "\n")},
                                log_dir=cls.work)
            start = time.monotonic()
            cls.sys.start()
            print("pid1: booted to 'running' in %.1fs" % (time.monotonic() - start), file=sys.stderr)
            # The system has a network of its own: the identity provider listens on its loopback.
            cls.idp = cls.sys.in_netns(lambda: cls.env.start_idp(lifetime=3600))
            cls.install_package()
            for name in USERS:
                cls.add_user(name)
                cls.write_config(name)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.sys is not None and cls.sys.pid:
                journal = cls.sys.run("journalctl", "--no-pager", "-o", "cat", timeout=60).stdout
                for secret in cls.env.secrets():
                    if secret in journal:
                        raise AssertionError("a secret the identity provider issued is in the journal")
        finally:
            try:
                if cls.sys is not None:
                    cls.sys.stop()
                    left = cls.sys.leftovers()
                    if left:
                        raise AssertionError("the PID-1 run left behind: %s" % left)
                    if not os.path.exists(cls.canary.name):
                        raise AssertionError("the host's /tmp was emptied")
                    for name, had in cls.host_users.items():
                        if cls._host_has_user(name) != had:
                            raise AssertionError("the host's user %s changed" % name)
            finally:
                cls.canary.close()
                shutil.rmtree(cls.work, ignore_errors=True)
                cls.env.__exit__(None, None, None)

    @classmethod
    def probe_file(cls, name, text):
        path = os.path.join(cls.work, "probe-" + name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @staticmethod
    def _host_has_user(name):
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False

    # ---- set-up inside the root --------------------------------------------------------------

    @classmethod
    def must(cls, *cmd, **kw):
        p = cls.sys.run(*cmd, **kw)
        if p.returncode != 0:
            raise AssertionError("%s exited %d: %s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    @classmethod
    def install_package(cls):
        start = time.monotonic()
        # man-db's trigger would rebuild the whole manual index (most of dpkg's time here);
        # `man` finds the pages without it. In the overlay only, like everything here.
        cls.must("rm", "-f", "/var/lib/man-db/auto-update")
        # As the README says (its dependencies are on this machine already: nothing to fetch).
        cls.must("sh", "-c", "cd %s && apt-get install -y -q ./aksspark-tokend_*.deb" % DEB_INSIDE,
                 env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=300)
        cls.must("systemctl", "daemon-reload")
        print("package: installed in %.1fs" % (time.monotonic() - start), file=sys.stderr)

    @classmethod
    def add_user(cls, name):
        # A host user of that name is in the overlay's lower /etc/passwd: replace it, inside only.
        if cls.sys.run("id", "-u", name).returncode == 0:
            cls.must("userdel", "--force", name)
        cls.must("useradd", "--create-home", "--shell", "/bin/bash", name)
        cls.must("chmod", "0700", "/home/" + name)

    @classmethod
    def write_config(cls, name, extra="", raw=None):
        home = "/home/" + name
        ca = cls.sys.write(home + "/.config/aksspark-tokend/ca.pem", read(cls.idp.ca_file), owner=name)
        for d in (".config", ".config/aksspark-tokend"):
            os.chown(cls.sys.host_path(home + "/" + d), *cls.sys.user(name)[:2])
        text = raw if raw is not None else (
            "[daemon]\nlog_level = debug\nhttp_timeout = 5s\n\n"
            "[profile default]\ntenant = contoso.onmicrosoft.com\n"
            "authority_host = %s\nca_file = %s\nspark_properties = ~/spark/spark.properties\n%s" %
            (cls.idp.url, ca, extra))
        return cls.sys.write(home + "/.config/aksspark-tokend/config.ini", text, mode=0o600, owner=name)

    # ---- helpers -----------------------------------------------------------------------------

    def ctl(self, user, *args, timeout=60):
        p = self.sys.run("aksspark-tokenctl", *args, user=user, timeout=timeout)
        self.env.client_stderr.append(p.stderr)
        return p

    def status(self, user, *args):
        p = self.ctl(user, "status", "--json", *args)
        try:
            return p.returncode, json.loads(p.stdout)
        except ValueError:
            return p.returncode, {"raw": p.stdout + p.stderr}

    def show(self, name, *props, unit=None):
        return self.sys.show(unit or TEMPLATE % name, *props)

    def main_pid(self, name):
        return int(self.show(name, "MainPID")["MainPID"])

    def sign_in(self, name, env=None):
        before = set(self.idp.pending_device_codes())
        proc = self.sys.popen("aksspark-tokenctl", "login", user=name, env=env)
        try:
            code = wait_until(lambda: [c for c in self.idp.pending_device_codes() if c not in before],
                              30, "a device code at the identity provider")[0]
            self.idp.approve(code, user=USERS.get(name, name + "@contoso.com"))
            out, err = proc.communicate(timeout=30)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        self.env.client_stderr.append(err)
        self.assertEqual(proc.returncode, 0, "login: %s %s" % (out, err))
        self.assertIn(code, out)

    def ensure_running(self, name):
        """Socket and service up and signed in."""
        self.sys.systemctl("reset-failed", TEMPLATE % name)
        self.assertEqual(self.sys.systemctl("start", SOCKET % name).returncode, 0)
        rc, st = self.status(name)
        if st.get("state") != "valid":
            self.sign_in(name)
            rc, st = self.status(name)
        self.assertEqual((rc, st.get("state")), (0, "valid"), st)
        wait_until(lambda: self.show(name, "ActiveState")["ActiveState"] == "active", 10, "an active service")
        return st

    def ns_kill(self, name, sig):
        pid = self.main_pid(name)
        self.assertNotEqual(pid, 0)
        p = self.sys.run("kill", "-" + sig, str(pid))
        self.assertEqual(p.returncode, 0, p.stderr)
        return pid

    def token_file(self, name):
        return self.sys.host_path("/home/%s/.kube/oauthToken" % name)

    # ---- the tests ---------------------------------------------------------------------------

    def test_00_harness_refuses_a_root_that_is_not_its_overlay(self):
        # Checked in setUpClass, before the first boot; the refusals said why.
        self.assertIn("refusing to boot systemd", self.safety["no-pivot"])
        self.assertIn("overlayfs without this run's marker", self.safety["no-marker"])
        self.assertIn("dry run", self.safety["dry-run"])
        # And the booted one is the overlay, with a fresh /tmp of its own.
        self.assertEqual(self.must("stat", "-f", "-c", "%T", "/").stdout.strip(), "overlayfs")
        self.assertNotIn(os.path.basename(self.canary.name), self.must("ls", "-A", "/tmp").stdout)

    def test_02_a_killed_test_leaves_nothing_behind(self):
        """A test runner's timeout may SIGKILL the test: the reaper still ends PID 1 and removes
        the cgroups and the directory."""
        owner = subprocess.Popen([sys.executable, pid1.__file__, "--boot"], stdout=subprocess.PIPE, text=True)
        try:
            fields = owner.stdout.readline().split()
            self.assertGreaterEqual(len(fields), 4, "the owner did not boot")
            pid, name, paths = int(fields[0]), fields[1], fields[2:]
            self.assertTrue(all(os.path.exists(p) for p in paths))
            self.assertEqual(pid1.Pid1._comm(pid), "systemd")
        finally:
            owner.kill()
            owner.wait()
            owner.stdout.close()
        wait_until(lambda: not os.path.exists("/proc/%d" % pid) and not any(os.path.exists(p) for p in paths),
                   60, "the reaper to end PID 1 and remove %s" % paths)
        self.assertNotIn(name, read("/proc/self/mountinfo"))

    def test_03_boot_leaves_the_hosts_kernel_settings_alone(self):
        """A sysctl.d file and /etc/hostname inside that differ from the host: the host's
        settings and hostname stay as they were (a network, UTS and IPC namespace of its own,
        /proc/sys and /sys read-only, systemd-sysctl masked); the system's own hostname is the
        one its /etc/hostname names."""
        self.assertEqual(self.sys.changed_host_settings(), [])
        self.assertEqual(self.sys.run("cat", "/proc/sys/kernel/hostname").stdout.strip(), PROBE_NAME)
        self.assertNotEqual(read("/proc/sys/kernel/hostname").strip(), PROBE_NAME)
        # A network of its own: none of the host's own interfaces (a kernel's per-namespace
        # fallback devices such as lo or tunl0 are in every namespace).
        fallback = {"lo", "tunl0", "sit0", "ip6tnl0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0",
                    "ip6gre0"}
        host = set(os.listdir("/sys/class/net")) - fallback
        inside = {line.split(":")[1].strip().split("@")[0]
                  for line in self.sys.run("ip", "-o", "link").stdout.splitlines() if ":" in line}
        self.assertIn("lo", inside)
        self.assertEqual(host & inside, set(), "the host's interfaces are inside")

    def test_01_package_installs_everything_where_systemd_looks_and_enables_nothing(self):
        files = set(self.must("dpkg", "-L", "aksspark-tokend").stdout.split())
        for f in ("/usr/bin/aksspark-tokend", "/usr/bin/aksspark-tokenctl",
                  "/lib/systemd/system/aksspark-tokend@.service", "/lib/systemd/system/aksspark-tokend@.socket",
                  "/lib/systemd/system/aksspark-tokend-key@.service",
                  "/usr/lib/systemd/user/aksspark-tokend.service", "/usr/lib/systemd/user/aksspark-tokend.socket",
                  "/usr/share/man/man8/aksspark-tokend.8.gz", "/usr/share/man/man1/aksspark-tokenctl.1.gz",
                  "/usr/share/man/man5/aksspark-tokend.conf.5.gz",
                  "/usr/share/bash-completion/completions/aksspark-tokenctl",
                  "/usr/share/doc/aksspark-tokend/copyright",
                  "/usr/share/doc/aksspark-tokend/examples/config.ini",
                  NIGHTLY + ".service", NIGHTLY + ".timer",
                  "/usr/share/doc/aksspark-tokend/examples/systemd/sandbox.conf"):
            self.assertIn(f, files)
        text = read(self.sys.host_path("/lib/systemd/system/aksspark-tokend@.service"))
        self.assertIn("ExecStart=/usr/bin/aksspark-tokend\n", text)
        self.assertIn("ExecStart=/usr/bin/aksspark-tokenctl run --min-valid 15m -- spark-submit",
                      read(self.sys.host_path(NIGHTLY + ".service")))
        # Found by the system manager and by user managers, enabled for no one.
        p = self.sys.systemctl("is-enabled", SOCKET % "alice", TEMPLATE % "alice")
        self.assertEqual(p.stdout.split(), ["disabled", "disabled"], p.stderr)
        p = self.sys.systemctl("--global", "is-enabled", "aksspark-tokend.socket", "aksspark-tokend.service")
        self.assertEqual(p.stdout.split(), ["disabled", "disabled"], p.stderr)
        p = self.must("find", "/etc/systemd", "-name", "aksspark-tokend*")
        self.assertEqual(p.stdout, "", "the package enabled something")
        self.assertIn("/usr/lib/systemd/user", self.must("systemd-analyze", "--global", "unit-paths").stdout.split())
        # Started by nothing either.
        self.assertEqual(self.sys.systemctl("is-active", SOCKET % "alice").stdout.strip(), "inactive")
        # The completion loads and completes the commands.
        p = self.must("bash", "-c", "source /usr/share/bash-completion/completions/aksspark-tokenctl; "
                                    "COMP_WORDS=(aksspark-tokenctl st); COMP_CWORD=1; "
                                    "$(complete -p aksspark-tokenctl | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); "
                                    "printf '%s\\n' \"${COMPREPLY[@]}\"")
        self.assertIn("status", p.stdout.split())
        self.assertIn("aksspark-tokend", self.must("man", "-w", "aksspark-tokend").stdout)

    def test_10_socket_activation_ready_and_status(self):
        self.assertEqual(self.sys.systemctl("start", SOCKET % "alice").returncode, 0)
        self.assertEqual(self.show("alice", "ActiveState")["ActiveState"], "inactive")
        sock = self.sys.host_path("/run/aksspark-tokend/alice.sock")
        st = os.stat(sock)
        self.assertEqual((st.st_uid, oct(st.st_mode & 0o777)), (self.sys.user("alice")[0], oct(0o600)))

        # The first call starts the daemon through the socket; it reports READY and STATUS.
        rc, status = self.status("alice")
        self.assertEqual((rc, status.get("state")), (2, "login_required"), status)
        s = wait_until(lambda: (lambda s: s if s["ActiveState"] == "active" else None)(
            self.show("alice", "ActiveState", "SubState", "StatusText", "TriggeredBy", "Type")), 10, "READY=1")
        self.assertEqual((s["SubState"], s["Type"]), ("running", "notify"))
        self.assertIn(SOCKET % "alice", s["TriggeredBy"])
        self.assertRegex(s["StatusText"], r"default: login_required")

        self.sign_in("alice")
        rc, status = self.status("alice")
        self.assertEqual((rc, status["state"], status.get("account")), (0, "valid", USERS["alice"]))
        wait_until(lambda: "default: valid" in self.show("alice", "StatusText")["StatusText"], 10,
                   "STATUS= with the valid profile")
        token = read(self.token_file("alice"))
        self.assertTrue(self.idp.token_is_valid(token))
        st = os.stat(self.token_file("alice"))
        self.assertEqual((st.st_uid, oct(st.st_mode & 0o777)), (self.sys.user("alice")[0], oct(0o600)))
        state = self.sys.host_path("/var/lib/aksspark-tokend/alice")
        st = os.stat(state)
        self.assertEqual((st.st_uid, oct(st.st_mode & 0o777)), (self.sys.user("alice")[0], oct(0o700)))

    def test_11_reload_rereads_the_configuration(self):
        self.ensure_running("alice")
        pid = self.main_pid("alice")
        self.write_config("alice", "\n[profile second]\ntenant = fabrikam.onmicrosoft.com\nauthority_host = %s\n"
                                   "ca_file = ~/.config/aksspark-tokend/ca.pem\ntoken_file = ~/.kube/second\n"
                          % self.idp.url)
        try:
            p = self.sys.systemctl("reload", TEMPLATE % "alice")
            self.assertEqual(p.returncode, 0, p.stderr)
            wait_until(lambda: "second" in self.ctl("alice", "profiles").stdout, 10, "the new profile")
            wait_until(lambda: "second: login_required" in self.show("alice", "StatusText")["StatusText"], 10,
                       "the new profile in STATUS=")
            self.assertEqual(self.main_pid("alice"), pid, "reload restarted the daemon")
            self.assertEqual(self.status("alice")[1]["state"], "valid")
        finally:
            self.write_config("alice")
            self.sys.systemctl("reload", TEMPLATE % "alice")
        wait_until(lambda: "second" not in self.ctl("alice", "profiles").stdout, 10, "the profile to go again")

    def test_12_watchdog_restarts_a_frozen_daemon(self):
        dropin = "/etc/systemd/system/%s.d/60-watchdog.conf" % (TEMPLATE % "alice")
        self.sys.write(dropin, "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=1s\n")
        try:
            self.must("systemctl", "daemon-reload")
            self.ensure_running("alice")
            self.must("systemctl", "restart", TEMPLATE % "alice")
            s = self.show("alice", "MainPID", "NRestarts", "WatchdogUSec")
            self.assertEqual(s["WatchdogUSec"], "2s")
            restarts = int(s["NRestarts"])
            # Kept alive by its pings for longer than a watchdog period...
            time.sleep(3)
            self.assertEqual(self.main_pid("alice"), int(s["MainPID"]), "the watchdog fired on a running daemon")
            # ...and restarted once frozen.
            old = self.ns_kill("alice", "STOP")
            wait_until(lambda: (lambda s: s["ActiveState"] == "active" and s["MainPID"] not in ("0", str(old)))(
                self.show("alice", "ActiveState", "MainPID")), 30, "a restart by the watchdog")
            s = self.show("alice", "NRestarts")
            self.assertEqual(int(s["NRestarts"]), restarts + 1)
            self.assertEqual(self.status("alice")[1]["state"], "valid", "the restarted daemon lost the sign-in")
        finally:
            os.unlink(self.sys.host_path(dropin))
            self.sys.systemctl("daemon-reload")
            self.sys.systemctl("restart", TEMPLATE % "alice")

    def test_13_restart_after_kill_9_keeps_the_sign_in(self):
        self.ensure_running("alice")
        codes = len(self.idp.requests("devicecode"))
        restarts = int(self.show("alice", "NRestarts")["NRestarts"])
        old = self.ns_kill("alice", "KILL")
        wait_until(lambda: (lambda s: s["ActiveState"] == "active" and s["MainPID"] not in ("0", str(old)))(
            self.show("alice", "ActiveState", "MainPID")), 30, "Restart= after kill -9")
        self.assertEqual(int(self.show("alice", "NRestarts")["NRestarts"]), restarts + 1)
        p = self.ctl("alice", "token")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(self.idp.token_is_valid(p.stdout.strip()))
        self.assertEqual(len(self.idp.requests("devicecode")), codes, "the restart asked for a new sign-in")

    def test_14_stop_within_a_second(self):
        self.ensure_running("alice")
        pid = self.main_pid("alice")
        start = time.monotonic()
        p = self.sys.systemctl("stop", TEMPLATE % "alice")
        wall = time.monotonic() - start
        self.assertEqual(p.returncode, 0, p.stderr)
        s = self.show("alice", "ActiveState", "Result", "ExecMainStatus", "ActiveExitTimestampMonotonic",
                      "InactiveEnterTimestampMonotonic")
        self.assertEqual((s["ActiveState"], s["Result"], s["ExecMainStatus"]), ("inactive", "success", "0"), s)
        took = (int(s["InactiveEnterTimestampMonotonic"]) - int(s["ActiveExitTimestampMonotonic"])) / 1e6
        print("stop: %.3fs in the manager, %.2fs around systemctl" % (took, wall), file=sys.stderr)
        self.assertLess(took, 1.0)
        self.assertNotEqual(self.sys.run("kill", "-0", str(pid)).returncode, 0, "the daemon still runs")
        self.assertTrue(os.path.exists(self.sys.host_path("/run/aksspark-tokend/alice.sock")),
                        "the socket went away with the service")

    def test_16_metrics_for_the_textfile_collector(self):
        """The template's metrics: /run/aksspark-tokend/metrics/USER.prom is root's symlink into
        the instance's own runtime directory, where the daemon (as alice) keeps the exposition;
        stopping the service takes both away, the shared directory stays root's."""
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:  # Debian's python3-prometheus-client, under another python3
            sys.path.append("/usr/lib/python3/dist-packages")
            from prometheus_client.parser import text_string_to_metric_families
        self.ensure_running("alice")
        link = self.sys.host_path("/run/aksspark-tokend/metrics/alice.prom")
        target = self.sys.host_path("/run/aksspark-tokend/metrics.d/alice/metrics.prom")
        valid = 'aksspark_tokend_profile_state{user="alice",profile="default",state="valid"} 1'

        def shows_valid():
            try:
                return valid in read(link)
            except OSError:
                return False
        wait_until(shows_valid, 10, "alice's metrics through the symlink")
        self.assertTrue(os.path.islink(link))
        uid = self.sys.user("alice")[0]
        shared = os.stat(os.path.dirname(link))
        self.assertEqual((shared.st_uid, oct(shared.st_mode & 0o777)), (0, oct(0o755)))
        st = os.stat(target)
        self.assertEqual((st.st_uid, oct(st.st_mode & 0o777)), (uid, oct(0o644)))
        names = {f.name for f in text_string_to_metric_families(read(link))}
        self.assertIn("aksspark_tokend_token_expiry_timestamp_seconds", names)

        self.assertEqual(self.sys.systemctl("stop", TEMPLATE % "alice").returncode, 0)
        self.assertFalse(os.path.lexists(link), "the symlink outlived the service")
        self.assertFalse(os.path.exists(target), "the metrics outlived the service")
        self.assertTrue(os.path.isdir(os.path.dirname(link)))
        self.ensure_running("alice")

    def test_17_metrics_all_from_the_packages_timer_unit(self):
        """The package's aksspark-tokend-metrics.service (what its timer runs every 30 s), as root
        under its own sandbox: one file for node_exporter, 0644 and root's, with alice's and
        bob's series labelled by the kernel's word (SO_PEERCRED would say PID 1: systemd made
        the listening sockets), and an instance that is not running started by the ask or
        reported down, never waited on past its second."""
        self.ensure_running("alice")
        self.ensure_running("bob")
        timer = self.sys.show("aksspark-tokend-metrics.timer", "UnitFileState", "LoadState")
        self.assertEqual(timer["LoadState"], "loaded", timer)
        p = self.sys.systemctl("start", "aksspark-tokend-metrics.service", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr + self.sys.run("systemctl", "status",
                                                                    "aksspark-tokend-metrics.service").stdout)
        path = self.sys.host_path("/var/lib/prometheus/node-exporter/aksspark-tokend.prom")
        st = os.stat(path)
        self.assertEqual((st.st_uid, oct(st.st_mode & 0o777)), (0, oct(0o644)))
        text = read(path)
        for user in ("alice", "bob"):
            self.assertIn('aksspark_tokend_up{user="%s"} 1' % user, text)
            self.assertIn('aksspark_tokend_build_info{user="%s",' % user, text)
        self.assertNotIn('user="root"', text)

    def test_15_no_restart_on_a_broken_configuration(self):
        self.write_config("bob", raw="[daemon]\nthis is not a configuration\n")
        try:
            self.sys.systemctl("reset-failed", TEMPLATE % "bob")
            p = self.sys.systemctl("start", TEMPLATE % "bob")
            self.assertNotEqual(p.returncode, 0)
            s = self.show("bob", "ActiveState", "Result", "ExecMainStatus", "NRestarts", "RestartUSec")
            self.assertEqual((s["ExecMainStatus"], s["Result"]), ("78", "exit-code"), s)
            # Past twice the restart delay it is still failed, never restarted.
            delay = float(s["RestartUSec"].rstrip("s")) if s["RestartUSec"].endswith("s") else 2.0
            time.sleep(2 * delay + 1)
            s = self.show("bob", "ActiveState", "NRestarts", "ExecMainStatus")
            self.assertEqual((s["ActiveState"], s["NRestarts"], s["ExecMainStatus"]), ("failed", "0", "78"), s)
        finally:
            self.write_config("bob")
            self.sys.systemctl("reset-failed", TEMPLATE % "bob", SOCKET % "bob")

    def test_20_bob_cannot_reach_alice(self):
        self.ensure_running("alice")
        self.ensure_running("bob")
        ta, tb = read(self.token_file("alice")), read(self.token_file("bob"))
        self.assertEqual((self.idp.access_token_user(ta), self.idp.access_token_user(tb)),
                         (USERS["alice"], USERS["bob"]))
        sock = "/run/aksspark-tokend/alice.sock"
        # By the socket's mode: connect() is refused, the client says so.
        probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                 "try:\n s.connect(%r)\nexcept PermissionError:\n print('EACCES'); sys.exit(0)\n"
                 "try:\n s.sendall(b'{\"op\":\"token\"}\\n')\nexcept OSError:\n pass\n"
                 "print(s.makefile().readline())" % sock)
        p = self.sys.run("python3", "-c", probe, user="bob")
        self.assertEqual(p.stdout.strip(), "EACCES", p.stdout + p.stderr)
        p = self.ctl("bob", "--socket", sock, "status")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("permission denied", p.stderr)
        # By SO_PEERCRED: bob past the file permissions (CAP_DAC_OVERRIDE) is still answered no.
        uid, gid, _ = self.sys.user("bob")
        p = self.sys.run("setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                         "--inh-caps=+dac_override", "--ambient-caps=+dac_override", "python3", "-c", probe)
        self.assertEqual(p.returncode, 0, p.stderr)
        answer = json.loads(p.stdout)
        self.assertEqual((answer["ok"], answer.get("error")), (False, "forbidden"), answer)
        self.assertNotIn(ta, p.stdout)
        # Her state directory and token file.
        for path in ("/var/lib/aksspark-tokend/alice", "/home/alice/.kube/oauthToken",
                     "/home/alice/spark/spark.properties"):
            p = self.sys.run("cat", path, user="bob")
            self.assertNotEqual(p.returncode, 0, "bob read %s" % path)
        p = self.sys.run("ls", "/var/lib/aksspark-tokend/alice", user="bob")
        self.assertNotEqual(p.returncode, 0, "bob listed alice's state directory")
        # Root may (the daemon's user and root).
        self.assertEqual(self.sys.run("aksspark-tokenctl", "--socket", sock, "status").returncode, 0)

    def test_21_alices_daemon_cannot_touch_bobs_home(self):
        """Bob opens his home to everyone; the sandbox still hides it from alice's daemon."""
        self.ensure_running("alice")
        self.must("chmod", "0777", "/home/bob")
        target = "/home/bob/shared.properties"
        self.sys.write(target, "spark.master k8s://https://example:443\n", mode=0o666, owner="bob")
        self.write_config("alice", "spark_properties = %s\n" % target)
        try:
            self.must("systemctl", "reload", TEMPLATE % "alice")
            wait_until(lambda: target in json.dumps(self.status("alice")[1].get("outputs", [])), 10,
                       "the new output in status")
            p = self.ctl("alice", "refresh")
            try:
                out = wait_until(lambda: [o for o in self.status("alice")[1].get("outputs", [])
                                          if o.get("path") == target and o.get("ok") is False], 15,
                                 "the output into bob's home to fail")[0]
            except AssertionError:
                raise AssertionError("refresh: %s %s; status: %s" % (p.stdout, p.stderr, self.status("alice")))
            # Not there (ENOENT), and nothing may be made there (EROFS): never "written".
            self.assertRegex(out.get("error", ""), r"(?i)no such file|read-only file system", out)
            self.assertEqual(read(self.sys.host_path(target)), "spark.master k8s://https://example:443\n")
            # What the daemon sees of /home: alice's home only (by its pid on the host).
            host_pid = pid1.ns_pid_to_host(self.sys, self.main_pid("alice"))
            self.assertEqual(os.listdir("/proc/%d/root/home" % host_pid), ["alice"])
            self.assertEqual(self.ctl("alice", "check").returncode, 1, "check passed with an output failing")
        finally:
            self.write_config("alice")
            self.sys.systemctl("reload", TEMPLATE % "alice")
            self.must("chmod", "0700", "/home/bob")

    def test_30_scheduled_job_runs_from_its_timer_and_its_preflight_stops_it(self):
        self.ensure_running("alice")
        marker = "/home/alice/job-ran"
        for ext in ("service", "timer"):
            self.must("cp", NIGHTLY + "." + ext, "/etc/systemd/system/spark-nightly." + ext)
        # As alice, with a job that leaves a mark instead of spark-submit; the timer soon.
        self.sys.write("/etc/systemd/system/spark-nightly.service.d/50-test.conf",
                       "[Service]\nUser=alice\nExecStart=\nExecStart=/usr/bin/aksspark-tokenctl run --min-valid 15m "
                       "-- /bin/sh -c 'echo ran >> \"$$HOME/job-ran\"'\n")
        self.sys.write("/etc/systemd/system/spark-nightly.timer.d/50-test.conf",
                       "[Timer]\nOnCalendar=\nOnActiveSec=1s\nRandomizedDelaySec=0\nPersistent=false\n")
        self.must("systemctl", "daemon-reload")

        def fired(n):
            s = self.sys.show("spark-nightly.service", "NRestarts", "Result", "ActiveState", "ExecMainStatus",
                              "InactiveEnterTimestampMonotonic")
            return s if int(s["InactiveEnterTimestampMonotonic"] or 0) > n and s["ActiveState"] != "activating" else None

        def preflight(s):   # aksspark-tokenctl run's exit status when it did not start the job
            return int(s["ExecMainStatus"]) if s.get("ExecMainStatus", "").isdigit() else None

        try:
            self.must("systemctl", "start", "spark-nightly.timer")
            s = wait_until(lambda: fired(0), 30, "the timer to run the job")
            self.assertEqual((s["Result"], preflight(s)), ("success", 0), s)
            self.assertEqual(read(self.sys.host_path(marker)), "ran\n")

            # Tokens of five minutes: the pre-flight's 15 minutes cannot be had; the job never runs.
            self.idp.set(lifetime=300)
            self.assertEqual(self.ctl("alice", "refresh").returncode, 0)
            last = int(self.sys.show("spark-nightly.service", "InactiveEnterTimestampMonotonic")
                       ["InactiveEnterTimestampMonotonic"])
            self.must("systemctl", "stop", "spark-nightly.timer")
            self.must("systemctl", "start", "spark-nightly.timer")
            s = wait_until(lambda: fired(last), 60, "the timer to run the job again")
            self.assertEqual(s["Result"], "exit-code", s)
            self.assertEqual(preflight(s), 1, s)
            self.assertEqual(read(self.sys.host_path(marker)), "ran\n", "the job ran after a failed pre-flight")
        finally:
            self.idp.set(lifetime=3600)
            self.sys.systemctl("stop", "spark-nightly.timer")
            self.sys.systemctl("reset-failed", "spark-nightly.service")
            self.ctl("alice", "refresh")

    def test_40_security_of_the_running_instance(self):
        self.ensure_running("alice")
        p = self.sys.run("systemd-analyze", "security", "--no-pager", TEMPLATE % "alice")
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
        self.assertTrue(m, p.stdout[-1000:] + p.stderr)
        level = float(m.group(1))
        print("exposure: %s (running) %.1f" % (TEMPLATE % "alice", level), file=sys.stderr)
        self.assertLessEqual(level, 1.5, p.stdout)
        # The sandbox really applied: no new privileges, a seccomp filter, the home read-write and
        # the rest read-only.
        host_pid = pid1.ns_pid_to_host(self.sys, self.main_pid("alice"))
        proc_status = read("/proc/%d/status" % host_pid)
        self.assertRegex(proc_status, r"NoNewPrivs:\s+1")
        self.assertRegex(proc_status, r"Seccomp:\s+2")
        self.assertRegex(proc_status, r"CapEff:\s+0+\n")
        mounts = {}
        for line in read("/proc/%d/mountinfo" % host_pid).splitlines():
            fields = line.split()
            mounts[fields[4]] = fields[5].split(",")
        self.assertIn("ro", mounts["/"])
        self.assertIn("rw", mounts["/home/alice"])

    def test_50_workstation_steps_with_the_installed_user_units(self):
        """The README's workstation steps after installing the package, under carol's own user
        manager (user@UID.service of this PID 1)."""
        name = "carol"
        self.add_user(name)
        uid = self.sys.user(name)[0]
        runtime = {"XDG_RUNTIME_DIR": "/run/user/%d" % uid}
        self.must("systemctl", "start", "user@%d.service" % uid)
        try:
            # 2. the configuration; 3. enable and start the units for the user.
            self.write_config(name)
            p = self.sys.run("systemctl", "--user", "daemon-reload", user=name, env=runtime)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = self.sys.run("systemctl", "--user", "enable", "--now", "aksspark-tokend.socket",
                             "aksspark-tokend.service", user=name, env=runtime)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = self.sys.run("systemctl", "--user", "show", "aksspark-tokend.service", "-p",
                             "FragmentPath,ActiveState,StatusText", user=name, env=runtime)
            self.assertIn("FragmentPath=/usr/lib/systemd/user/aksspark-tokend.service", p.stdout)
            self.assertIn("ActiveState=active", p.stdout)
            self.assertIn("default: login_required", p.stdout)
            # 4. sign in; 5. status says valid, and so does the unit's status line.
            self.sign_in(name, env=runtime)
            p = self.sys.run("aksspark-tokenctl", "status", user=name, env=runtime)
            self.env.client_stderr.append(p.stderr)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"State:\s+valid")
            self.assertIn("carol@contoso.com", p.stdout)
            p = self.sys.run("systemctl", "--user", "status", "--no-pager", "aksspark-tokend", user=name, env=runtime)
            self.assertIn("default: valid", p.stdout)
            self.assertTrue(self.idp.token_is_valid(read(self.token_file(name))))
        finally:
            self.sys.systemctl("stop", "user@%d.service" % uid)

    def test_51_workstation_unit_seals_with_the_session_keyring(self):
        """A desktop session's keyring (gnome-keyring, unlocked with the password on stdin, on the
        user manager's session bus): the installed user unit, state_protection auto, uses it."""
        name = "erin"
        self.add_user(name)
        uid = self.sys.user(name)[0]
        bus = "unix:path=/run/user/%d/bus" % uid
        session = {"XDG_RUNTIME_DIR": "/run/user/%d" % uid, "DBUS_SESSION_BUS_ADDRESS": bus}
        self.must("systemctl", "start", "user@%d.service" % uid)

        def session_status():
            p = self.sys.run("aksspark-tokenctl", "status", "--json", user=name, env=session)
            self.env.client_stderr.append(p.stderr)
            try:
                return json.loads(p.stdout)
            except ValueError:
                return {"raw": p.stdout + p.stderr}
        try:
            self.write_config(name)
            p = self.sys.run("sh", "-c", "printf %s 'erin password' | gnome-keyring-daemon --unlock "
                             "--components=secrets --replace", user=name, env=session, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            wait_until(lambda: "collection/login" in self.sys.run(
                "busctl", "--user", "call", "org.freedesktop.secrets", "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service", "ReadAlias", "s", "default", user=name, env=session).stdout,
                15, "the unlocked login keyring")
            p = self.sys.run("systemctl", "--user", "enable", "--now", "aksspark-tokend.socket",
                             "aksspark-tokend.service", user=name, env=session)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.sign_in(name, env=session)
            st = session_status()
            self.assertEqual(st.get("store", {}).get("protection"), "keyring", st)
            state = self.sys.host_path("/home/%s/.local/state/aksspark-tokend/default.json" % name)
            wait_until(lambda: os.path.exists(state) and '"version": 2' in read(state), 30, "a sealed state file")
            for path, data in self._files_under("/home/%s/.local/state" % name):
                for s in self.env.secrets():
                    self.assertNotIn(s.encode(), data, "a token in clear in %s" % path)
            p = self.sys.run("sh", "-c", "secret-tool lookup application aksspark-tokend purpose state-key | wc -c",
                             user=name, env=session)
            self.assertEqual(p.stdout.strip(), "32", p.stderr)
            # A restart of the unit needs no new sign-in.
            codes = len(self.idp.requests("devicecode"))
            p = self.sys.run("systemctl", "--user", "restart", "aksspark-tokend.service", user=name, env=session)
            self.assertEqual(p.returncode, 0, p.stderr)
            st = session_status()
            self.assertEqual((st.get("state"), st.get("store", {}).get("protection")), ("valid", "keyring"), st)
            self.assertEqual(len(self.idp.requests("devicecode")), codes)
        finally:
            owner = self.sys.run("busctl", "--user", "status", "org.freedesktop.secrets", user=name, env=session)
            pid = re.search(r"^PID=(\d+)$", owner.stdout, re.M)
            self.sys.systemctl("stop", "user@%d.service" % uid)
            if pid:
                self.sys.run("kill", pid.group(1))

    def _files_under(self, top):
        for d, _, fs in os.walk(self.sys.host_path(top)):
            for f in fs:
                with open(os.path.join(d, f), "rb") as fh:
                    yield os.path.join(d, f), fh.read()

    def test_60_state_sealed_with_the_instance_key(self):
        self.ensure_running("alice")
        rts = self.idp.valid_refresh_tokens(USERS["alice"])
        self.assertTrue(rts, "the identity provider issued alice no refresh token")
        st = self.status("alice")[1]
        journal = lambda: self.sys.run("journalctl", "--no-pager", "-o", "cat", "-u", TEMPLATE % "alice",
                                       "-u", "aksspark-tokend-key@alice.service").stdout[-4000:]
        pid = self.main_pid("alice")
        self.assertEqual(st.get("store", {}).get("protection"), "systemd-creds", "%s\n%s\n%s\n%s" % (
            st, journal(), self.sys.run("ls", "-laR", "/run/credentials").stdout,
            self.sys.run("sh", "-c", "tr '\\0' '\\n' < /proc/%d/environ" % pid).stdout))
        state = self.sys.host_path("/var/lib/aksspark-tokend/alice/default.json")
        try:
            wait_until(lambda: os.path.exists(state) and '"version": 2' in read(state), 30, "a sealed state file")
        except AssertionError as e:
            raise AssertionError("%s\n%s\n%s\n%s" % (e, self.status("alice")[1], journal(), self.sys.run(
                "ls", "-laR", "/run/credentials").stdout))
        # No token the identity provider issued anywhere under the state directories or keys.
        secrets = [s.encode() for s in self.env.secrets()] + [r.encode() for r in rts]
        for top in ("/var/lib/aksspark-tokend", "/var/lib/aksspark-tokend-keys"):
            for path, data in self._files_under(top):
                for s in secrets:
                    self.assertNotIn(s, data, "a token in clear in %s" % path)
        self.assertIn('"sealed": "', read(state))
        # The key: made once, root's only, and not in clear either.
        cred = "/var/lib/aksspark-tokend-keys/alice.cred"
        st = os.stat(self.sys.host_path(cred))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        self.assertEqual(os.stat(self.sys.host_path("/var/lib/aksspark-tokend-keys")).st_mode & 0o777, 0o700)
        # status and doctor say which protection is in force.
        rc, st = self.status("alice")
        self.assertEqual(st["store"]["protection"], "systemd-creds", st)
        self.assertIn("Protection:   systemd-creds", self.ctl("alice", "status").stdout)
        p = self.ctl("alice", "doctor", timeout=120)
        self.assertRegex(p.stdout, r"ok +profile default: state protection: systemd-creds", p.stdout)
        # bob reads neither the encrypted key nor alice's decrypted credential.
        for path in (cred, "/run/credentials/aksspark-tokend@alice.service/state-key",
                     "/run/credentials/aksspark-tokend@alice.service"):
            p = self.sys.run("cat", path, user="bob")
            self.assertNotEqual(p.returncode, 0, "bob read %s" % path)
        self.assertEqual(self.sys.run("ls", "/run/credentials/aksspark-tokend@alice.service",
                                      user="bob").returncode != 0, True)

        # A restart keeps the sign-in: the sealed file opens with the same key.
        codes = len(self.idp.requests("devicecode"))
        self.assertEqual(self.sys.systemctl("restart", TEMPLATE % "alice").returncode, 0)
        self.assertEqual(self.status("alice")[1]["state"], "valid", "the restart lost the sealed sign-in")
        self.assertEqual(len(self.idp.requests("devicecode")), codes)
        sealed = read(state)

        # The same state directory on a machine with another host key (and so another instance
        # key): it does not open; the profile needs a sign-in, the file stays sealed.
        secret = "/var/lib/systemd/credential.secret"
        key_unit = "aksspark-tokend-key@alice.service"
        self.assertEqual(self.sys.systemctl("stop", key_unit, TEMPLATE % "alice").returncode, 0)
        self.must("mv", secret, secret + ".first")
        self.must("mv", cred, cred + ".first")
        try:
            self.assertEqual(self.sys.systemctl("start", TEMPLATE % "alice").returncode, 0)
            self.assertTrue(os.path.exists(self.sys.host_path(cred)), "no new key was made")
            rc, st = self.status("alice")
            self.assertEqual((rc, st.get("state")), (2, "login_required"), st)
            journal = self.must("journalctl", "--no-pager", "-o", "cat", "-u", TEMPLATE % "alice").stdout
            self.assertIn("does not open with the key at hand", journal)
            self.assertEqual(read(state), sealed, "the unreadable file was replaced")
            self.assertNotIn("refresh_token", read(state))
        finally:
            self.sys.systemctl("stop", key_unit, TEMPLATE % "alice")
            self.must("mv", "-f", secret + ".first", secret)
            self.must("mv", "-f", cred + ".first", cred)
        # Back on its own machine, the file opens again: nothing was lost or left in clear.
        self.assertEqual(self.sys.systemctl("start", TEMPLATE % "alice").returncode, 0)
        self.assertEqual(self.status("alice")[1]["state"], "valid")
        self.assertEqual(len(self.idp.requests("devicecode")), codes)

    def test_99_stop_everything_quickly(self):
        for name in USERS:
            start = time.monotonic()
            p = self.sys.systemctl("stop", TEMPLATE % name, SOCKET % name)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertLess(time.monotonic() - start, 5.0)
            self.assertFalse(os.path.exists(self.sys.host_path("/run/aksspark-tokend/%s.sock" % name)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
