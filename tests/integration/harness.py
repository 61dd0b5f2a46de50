"""Shared helpers for the integration tests: a temporary world (home, runtime dir, state dir,
config), the local identity provider, and the real daemon with its sd_notify messages captured.

Every Env scans what the daemon logged and what aksspark-tokenctl printed on stderr for every
secret the identity provider ever issued, and fails the test if one appears.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.environ.get("AKSSPARK_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("AKSSPARK_BUILD_DIR") or os.path.join(SOURCE, "build")
TOKEND = os.path.join(BUILD, "aksspark-tokend")
TOKENCTL = os.path.join(BUILD, "aksspark-tokenctl")
IS_ROOT = os.geteuid() == 0
# Every socket client is answered within 100 ms (interface.md, "Robustness promises"): no
# iteration of the daemon's loop may take that long. A sanitizer build is some times slower
# (400 ms); a daemon under valgrind is only recorded, never judged.
STALL_LIMIT_MS = os.environ.get("AKSSPARK_STALL_LIMIT_MS")
STALL_REPORT = os.environ.get("AKSSPARK_STALL_REPORT")   # a file: one line per daemon
STALL_RE = re.compile(r"Event loop: longest stall(?: so far)? ([0-9.]+) ms")

sys.path.insert(0, os.path.join(SOURCE, "tests", "idp"))


def ensure_user(name):
    """The password entry of a local test user, created (with a home) when missing."""
    import pwd
    try:
        return pwd.getpwnam(name)
    except KeyError:
        p = subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name],
                           capture_output=True, text=True)
        try:
            return pwd.getpwnam(name)
        except KeyError:  # not created by a test running beside this one either
            raise AssertionError("useradd %s failed: %s" % (name, p.stderr))


def built_with_sanitizers(binary=None):
    """Is the daemon an AddressSanitizer build?"""
    try:
        with open(binary or TOKEND, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def wait_until(predicate, timeout, what="condition", interval=0.02):
    """Poll predicate until it returns a true value; fail with what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _skips_fail_under_ci():
    """Under CI (CI=true) as root, a skipped test is a failure: every test can run there, so a
    skip means a missing install step, and it must not pass as green."""
    if os.environ.get("CI") != "true" or not IS_ROOT:
        return
    import unittest

    def add_skip_as_failure(self, test, reason):
        try:
            raise AssertionError("skipped under CI as root (a missing install step?): %s" % reason)
        except AssertionError:
            self.addFailure(test, sys.exc_info())

    unittest.TestResult.addSkip = add_skip_as_failure
    unittest.TextTestResult.addSkip = add_skip_as_failure


_skips_fail_under_ci()


def wait_value(produce, accept, timeout, what="value", interval=0.05):
    """Poll produce() until accept(value); return that value. On timeout, fail showing the last
    value, so that a state read at one instant is never what a test asserts."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s; last: %r" % (timeout, what, value))
        time.sleep(interval)


class NotifyListener:
    """A NOTIFY_SOCKET: collects every datagram the daemon sends."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # a daemon running as another user must reach it
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append(data.decode("utf-8", "replace"))

    def all(self):
        with self.lock:
            return list(self.messages)

    def fields(self, name):
        """Every value sent for NAME= (in order)."""
        out = []
        for m in self.all():
            for line in m.split("\n"):
                if line.startswith(name + "="):
                    out.append(line[len(name) + 1:])
        return out

    def close(self):
        self.stopped = True
        self.thread.join(1)
        self.sock.close()


class Daemon:
    under_valgrind = False   # its stalls are recorded, not judged
    frozen_on_purpose = False  # a test stopped it (SIGSTOP): a stall is what it asked for

    def __init__(self, env, proc, notify, log_path, socket_path):
        self.env = env
        self.proc = proc
        self.notify = notify
        self.log_path = log_path
        self.socket_path = socket_path

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=10):
        wait_until(lambda: "1" in self.notify.fields("READY") or self.proc.poll() is not None,
                   timeout, "READY=1")
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %s before READY:\n%s" % (self.proc.returncode, self.log()))
        return self

    def notify_messages(self):
        return self.notify.all()

    def status_text(self):
        values = self.notify.fields("STATUS")
        return values[-1] if values else None

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout=10):
        return wait_until(lambda: text in self.log(), timeout, "log line containing %r" % text)

    def connect(self, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket_path)
        return s

    def request(self, obj, timeout=10):
        """One request on a fresh connection; returns the first answer as a dict."""
        with self.connect(timeout) as s:
            data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
            if isinstance(data, str):
                data = data.encode()
            if not data.endswith(b"\n"):
                data += b"\n"
            s.sendall(data)
            f = s.makefile("rb")
            line = f.readline()
            if not line:
                raise AssertionError("the daemon closed the connection without answering")
            return json.loads(line)

    def status(self, profile=None):
        req = {"op": "status"}
        if profile:
            req["profile"] = profile
        return self.request(req)

    def wait_state(self, state, profile=None, timeout=30):
        """The status once the profile is in state (states change under running timers: a
        retry turns expired into refreshing for an instant; read it, never assume it)."""
        return wait_value(lambda: self.status(profile), lambda st: st.get("state") == state, timeout,
                          "profile %s in state %s" % (profile or "default", state))

    def wait_ctl(self, accept, *args, timeout=30, what=None):
        """Run aksspark-tokenctl args until accept(completed process) holds; returns it."""
        return wait_value(lambda: self.ctl(*args), accept, timeout, what or "aksspark-tokenctl %s" % " ".join(args))

    def ctl(self, *args, timeout=60, env=None, input=None, check=False):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([TOKENCTL, "--socket", self.socket_path] + list(args), capture_output=True,
                           text=True, timeout=timeout, env=e, input=input)
        self.env.client_stderr.append(p.stderr)
        if check and p.returncode != 0:
            raise AssertionError("aksspark-tokenctl %s exited %d: %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def sign_in(self, idp, user="alice@contoso.com", profile=None, timeout=30):
        """Run `aksspark-tokenctl login` as a person would, approve the code, wait for success."""
        args = [TOKENCTL, "--socket", self.socket_path]
        if profile:
            args += ["--profile", profile]
        before = set(idp.pending_device_codes())
        proc = subprocess.Popen(args + ["login"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            code = wait_until(lambda: [c for c in idp.pending_device_codes() if c not in before],
                              timeout, "a device code at the identity provider")[0]
            idp.approve(code, user=user)
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        self.env.client_stderr.append(err)
        if proc.returncode != 0:
            raise AssertionError("login exited %d: %s\n%s" % (proc.returncode, err, self.log()))
        if code not in out:
            raise AssertionError("login did not show the user code: %r" % out)
        return out

    def stop(self, timeout=1.0):
        """SIGTERM; the daemon must exit 0 within timeout seconds."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=max(timeout, 5))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not stop within 5 s of SIGTERM")
        took = time.monotonic() - start
        if took > timeout:
            raise AssertionError("daemon took %.2fs to stop (limit %.1fs)" % (took, timeout))
        if rc != 0:
            raise AssertionError("daemon exited %d after SIGTERM:\n%s" % (rc, self.log()[-3000:]))
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def longest_stall_ms(self):
        """The longest event-loop stall the daemon logged (daemon/loop/loop.c), in ms; 0 if none."""
        longest = 0.0
        for m in STALL_RE.finditer(self.log()):
            longest = max(longest, float(m.group(1)))
        return longest


class Env:
    """A temporary world for one test: use as a context manager."""

    def __init__(self, prefix="aksspark-it-"):
        self.root = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.root, 0o755)
        self.home = os.path.join(self.root, "home")
        self.runtime = os.path.join(self.root, "run")
        self.state = os.path.join(self.root, "state")
        self.config_path = os.path.join(self.root, "config.ini")
        for d in (self.home, self.runtime):
            os.makedirs(d, mode=0o700)
        self.socket_path = os.path.join(self.runtime, "aksspark-tokend.sock")
        self.idps = []
        self.daemons = []
        self.client_stderr = []
        self.secret_files = []   # client secrets, private keys: scanned for like issued secrets
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            for d in self.daemons:
                d.kill()
                d.notify.close()
            if exc_type is None:
                self.assert_no_secret_leaked()
                self.assert_loop_never_stalled()
        finally:
            for idp in self.idps:
                idp.stop()
            if os.environ.get("AKSSPARK_KEEP_TEST_DIRS"):
                print("kept", self.root, file=sys.stderr)
            else:
                shutil.rmtree(self.root, ignore_errors=True)
        return False

    @property
    def idp(self):
        return self.idps[0] if self.idps else None

    def start_idp(self, lifetime=30, **settings):
        from fake_idp import FakeIdp
        d = os.path.join(self.root, "idp%d" % len(self.idps))
        os.makedirs(d, exist_ok=True)
        idp = FakeIdp(d, lifetime=lifetime)
        idp.start()
        if settings:
            idp.set(**settings)
        self.idps.append(idp)
        return idp

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_config(self, profiles=None, daemon=None, idp=None, raw=None):
        """Write config.ini. profiles: {name: {key: value or [values], or None to leave a key
        out}}; a profile without authority_host talks to idp (default: the first started;
        False: none)."""
        if raw is not None:
            with open(self.config_path, "w") as f:
                f.write(raw)
            return self.config_path
        if idp is None:
            idp = self.idp   # idp=False: no identity provider keys at all
        d = {"socket": self.socket_path, "state_dir": self.state, "log_level": "debug", "http_timeout": "5s"}
        d.update(daemon or {})
        lines = ["[daemon]"] + ["%s = %s" % (k, v) for k, v in d.items() if v is not None]
        for name, keys in (profiles or {"default": {}}).items():
            keys = dict(keys)
            keys.setdefault("tenant", "contoso.onmicrosoft.com")
            if idp and "authority_host" not in keys:
                keys["authority_host"] = idp.url
                keys.setdefault("ca_file", idp.ca_file)
            lines.append("")
            lines.append("[profile %s]" % name)
            for k, v in keys.items():
                if v is None:   # a key the test wants left out (tenant, ...)
                    continue
                for item in (v if isinstance(v, list) else [v]):
                    lines.append("%s = %s" % (k, item))
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return self.config_path

    def daemon_environment(self, extra=None):
        e = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "XDG_RUNTIME_DIR": self.runtime,
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "LANG": "C.UTF-8",
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        # Tokens here live seconds: let scheduled refreshes come closer than the 30 s floor.
        # A test of the floor itself passes {"AKSSPARK_TEST_REFRESH_FLOOR_SEC": None}.
        e["AKSSPARK_TEST_REFRESH_FLOOR_SEC"] = "0"
        e.update(extra or {})
        return {k: v for k, v in e.items() if v is not None}

    def start_daemon(self, extra_args=None, env=None, wait=True, config=None, prefix=None):
        self._n += 1
        notify = NotifyListener(os.path.join(self.root, "notify%d.sock" % self._n))
        log_path = os.path.join(self.root, "daemon%d.log" % self._n)
        args = list(prefix or []) + [TOKEND, "--config", config or self.config_path]
        if IS_ROOT:
            args.append("--allow-root")
        args += list(extra_args or [])
        e = self.daemon_environment(env)
        e["NOTIFY_SOCKET"] = notify.path
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e)
        d = Daemon(self, proc, notify, log_path, self.socket_path)
        d.under_valgrind = any("valgrind" in os.path.basename(str(a)) for a in (prefix or []))
        self.daemons.append(d)
        if wait:
            d.wait_ready()
        return d

    def start_daemon_as(self, user, **kwargs):
        """Start the daemon as the local user (a pwd entry) that owns this world, without
        --allow-root: the world's directories become theirs, the config and CA readable."""
        global IS_ROOT
        for d in (self.root, self.home, self.runtime):
            os.chown(d, user.pw_uid, user.pw_gid)
        os.chmod(self.config_path, 0o644)
        for idp in self.idps:
            os.chmod(os.path.dirname(idp.ca_file), 0o755)
            os.chmod(idp.ca_file, 0o644)
        prefix = ["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid, "--init-groups", "--"]
        was_root, IS_ROOT = IS_ROOT, False
        try:
            return self.start_daemon(prefix=prefix, **kwargs)
        finally:
            IS_ROOT = was_root

    def secrets(self):
        out = set()
        for idp in self.idps:
            for s in idp.all_secrets():
                if not s:
                    continue
                out.add(s)
                parts = s.split(".")
                if len(parts) == 3:
                    # The payload and signature are unique to one token (the header is not).
                    out.update(p for p in parts[1:] if len(p) >= 16)
                elif len(s) >= 48:
                    out.add(s[:24])
                    out.add(s[-24:])
        return out | self._file_secrets()

    def add_secret_file(self, path):
        """A credential file the daemon reads (client secret, PEM key, password): none of its
        secret lines may appear in a log."""
        self.secret_files.append(path)

    def _file_secrets(self):
        out = set()
        for path in self.secret_files:
            try:
                text = read(path)
            except OSError:
                continue
            in_key = False
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("-----BEGIN") and "PRIVATE KEY" in line:
                    in_key = True
                elif line.startswith("-----END"):
                    in_key = False
                elif in_key and len(line) >= 16 and ":" not in line:
                    out.add(line)   # every base64 line of a private key
                elif not line.startswith("-----") and len(line) >= 8 and "BEGIN" not in text:
                    out.add(line)   # a secret or password file
        return out

    def assert_loop_never_stalled(self):
        """No daemon of this test held its event loop for the stall limit or longer."""
        limit = float(STALL_LIMIT_MS) if STALL_LIMIT_MS else 400.0 if built_with_sanitizers() else 100.0
        for d in self.daemons:
            stall = d.longest_stall_ms()
            if STALL_REPORT:
                with open(STALL_REPORT, "a") as f:
                    f.write("%.1f %s%s %s\n" % (stall, os.path.basename(sys.argv[0]),
                                                 " (valgrind)" if d.under_valgrind else "", d.log_path))
            if stall >= limit and not d.under_valgrind and not d.frozen_on_purpose:
                raise AssertionError("the daemon's event loop stalled %.1f ms (limit %.0f ms); see %s"
                                     % (stall, limit, d.log_path))

    def assert_no_secret_leaked(self):
        texts = [("daemon log %s" % d.log_path, d.log()) for d in self.daemons]
        # A credential is never copied into the state directory (a refresh token is expected there).
        credentials = self._file_secrets()
        for top, _, files in os.walk(self.state):
            for name in files:
                try:
                    text = read(os.path.join(top, name), "rb").decode("utf-8", "replace")
                except OSError:
                    continue
                for secret in credentials:
                    if secret in text:
                        raise AssertionError("a credential appears in the state file %s" % name)
        texts += [("aksspark-tokenctl stderr", e) for e in self.client_stderr if e]
        for secret in self.secrets():
            for where, text in texts:
                if secret in text:
                    raise AssertionError("a secret issued by the identity provider appears in the %s" % where)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()
