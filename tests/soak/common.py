"""Shared pieces of the soak, crash-restart and resource harnesses: a recording identity provider
(when each access token was issued and for which tenant; optional AAD-like rotation grace), a
reader that checks every output at every sampled instant, and /proc samplers for a process's
memory and file descriptors. Python 3 standard library only."""

import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("AKSSPARK_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "idp"))

import harness  # noqa: E402
from fake_idp import FAULT_KINDS, FakeIdp  # noqa: E402

TOKEN_KEY = "spark.kubernetes.authenticate.submission.oauthToken"


class RecordingIdp(FakeIdp):
    """The fake identity provider, plus: for every access token, when the request that got it
    arrived and for which tenant (so a lapse can be explained from the request log), every
    refresh-token rotation, and rotation_grace seconds during which a refresh token that was
    already used still works once more (real Azure AD does not invalidate a refresh token when
    it is redeemed; the plain fake refuses it at once)."""

    def __init__(self, directory, lifetime=30, rotation_grace=0.0, **kw):
        super().__init__(directory, lifetime=lifetime, **kw)
        self.rotation_grace = rotation_grace
        self.issue_log = {}    # access token -> (request t, tenant, grant_type)
        self.rotations = []    # (request t, tenant, old refresh token, new one, t rotated)
        self._used_at = {}     # refresh token -> time it was redeemed
        self.grace_redemptions = 0

    def _issue_tokens(self, user, client_id, tenant, scope, form, rec):
        status, answer = super()._issue_tokens(user, client_id, tenant, scope, form, rec)
        self.issue_log[answer["access_token"]] = (rec["t"], tenant, rec.get("grant_type"))
        return status, answer

    def _refresh_grant(self, tenant, form, crid, rec):
        old = form.get("refresh_token", "")
        rt = self._refresh.get(old)
        if (rt is not None and rt.state == "used" and self.rotation_grace > 0 and
                rt.client_id == form.get("client_id") and
                time.time() - self._used_at.get(old, 0) <= self.rotation_grace):
            rec["user"], rec["grace"] = rt.user, True
            self.grace_redemptions += 1
            scope = form.get("scope") or rt.scope
            status, answer = self._issue_tokens(rt.user, rt.client_id, tenant, scope, form, rec)
            self.rotations.append((rec["t"], tenant, old, answer.get("refresh_token"), time.time()))
            return status, answer
        status, answer = super()._refresh_grant(tenant, form, crid, rec)
        if status == 200:
            self._used_at[old] = time.time()
            self.rotations.append((rec["t"], tenant, old, answer.get("refresh_token"), time.time()))
        return status, answer

    def token_info(self, token):
        """(request t, tenant, exp) of an access token we issued, else None."""
        with self._lock:
            meta = self.issue_log.get(token)
            entry = self._access.get(token)
        if meta is None or entry is None:
            return None
        return meta[0], meta[1], entry[1]

    def refresh_token_is_valid(self, token):
        with self._lock:
            rt = self._refresh.get(token)
            if rt is None or rt.state == "revoked":
                return False
            if rt.state == "valid":
                return True
            return (self.rotation_grace > 0 and
                    time.time() - self._used_at.get(token, 0) <= self.rotation_grace)


def start_recording_idp(env, lifetime, rotation_grace=0.0, **settings):
    """Like env.start_idp(), with a RecordingIdp (env stops it and scans its secrets)."""
    d = os.path.join(env.root, "idp%d" % len(env.idps))
    os.makedirs(d, exist_ok=True)
    idp = RecordingIdp(d, lifetime=lifetime, rotation_grace=rotation_grace)
    idp.start()
    if settings:
        idp.set(**settings)
    env.idps.append(idp)
    return idp


def parse_properties(text):
    """What java.util.Properties.load sees for simple `key=value` / `key value` lines (the
    files the harnesses write have no continuations or escapes): dict of key -> value."""
    out = {}
    for line in text.splitlines():
        s = line.lstrip(" \t\f")
        if not s or s[0] in "#!":
            continue
        i = 0
        while i < len(s) and s[i] not in "=: \t\f":
            i += 1
        key, rest = s[:i], s[i:].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        out[key] = rest
    return out


class Output:
    """One file the daemon writes for a profile; kind is "token" or "props"."""

    def __init__(self, profile, kind, path, expected_keys=None):
        self.profile, self.kind, self.path = profile, kind, path
        self.expected_keys = expected_keys or {}


class OutputReader(threading.Thread):
    """Reads every output in a loop. Each read is classified:
    - torn: missing, empty, not parseable, a token the idp never issued, other keys changed
      (a hard failure whatever the faults);
    - lapsed: an issued token that had expired at the instant the read began;
    - good.
    Lapsed reads are grouped into episodes (profile, token) for explanation."""

    def __init__(self, idp_of, outputs, interval=0.01):
        super().__init__(daemon=True)
        self.idp_of = idp_of          # profile -> RecordingIdp
        self.outputs = outputs
        self.interval = interval
        self.stop_flag = threading.Event()
        self.reads = 0
        self.torn = []                # (t, path, why)
        self.lapses = {}              # (profile, token) -> [first t, last t, reads, exp, path set]
        self.lock = threading.Lock()
        self.paused = threading.Event()

    def check(self, out):
        t0 = time.time()
        try:
            with open(out.path, "rb") as f:
                data = f.read()
        except OSError as e:
            return t0, None, "cannot open: %s" % e
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return t0, None, "%d bytes, not UTF-8" % len(data)
        if out.kind == "token":
            token = text
        else:
            props = parse_properties(text)
            token = props.get(TOKEN_KEY)
            if token is None:
                return t0, None, "no %s in %d bytes" % (TOKEN_KEY, len(data))
            for k, v in out.expected_keys.items():
                if props.get(k) != v:
                    return t0, None, "key %s changed to %r" % (k, props.get(k))
        if not token:
            return t0, None, "empty token (%d bytes)" % len(data)
        info = self.idp_of[out.profile].token_info(token)
        if info is None:
            return t0, None, "%d bytes that are no token the idp issued" % len(token)
        return t0, (token, info[2]), None

    def sweep(self):
        for out in self.outputs:
            t0, tok, why = self.check(out)
            with self.lock:
                self.reads += 1
                if why:
                    self.torn.append((t0, out.path, why))
                    continue
                token, exp = tok
                if exp <= t0:
                    ep = self.lapses.setdefault((out.profile, token), [t0, t0, 0, exp, set()])
                    ep[1] = t0
                    ep[2] += 1
                    ep[4].add(out.kind)

    def run(self):
        while not self.stop_flag.is_set():
            if not self.paused.is_set():
                self.sweep()
            self.stop_flag.wait(self.interval)

    def stop(self):
        self.stop_flag.set()
        self.join()


# ---- /proc samplers ------------------------------------------------------------------------

def proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def proc_rss_kib(pid):
    return proc_status_kib(pid, "VmRSS")


def proc_pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_ticks(pid):
    """utime + stime of a process (clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def _socket_inodes(kinds=("tcp", "tcp6")):
    inodes = set()
    for k in kinds:
        try:
            with open("/proc/net/%s" % k) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 9:
                        inodes.add(parts[9])
        except OSError:
            pass
    return inodes


def proc_fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class ResourceSampler(threading.Thread):
    """Samples a process's VmRSS and file descriptors every interval seconds. Each fd is known
    by (number, what it points at); an output's temp file, a directory opened for fsync, the
    sd_notify datagram socket and a connection to the identity provider come and go. A leak is
    an fd that stays: compare persistent() sets (seen in every one of several samples)."""

    def __init__(self, pid, interval=0.5):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []             # (t, rss KiB, non-TCP fd count, TCP count, frozenset of fd ids)
        self.tcp_first_seen = {}      # inode -> first t
        self.tcp_last_seen = {}
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def sample(self):
        t = time.time()
        rss = proc_rss_kib(self.pid)
        tcp_inodes = _socket_inodes()
        ids, n_tcp, n_other = set(), 0, 0
        d = "/proc/%d/fd" % self.pid
        for name in os.listdir(d):
            try:
                target = os.readlink(os.path.join(d, name))
            except OSError:
                continue  # closed between listdir and readlink
            if target.startswith("socket:[") and target[8:-1] in tcp_inodes:
                n_tcp += 1
                inode = target[8:-1]
                self.tcp_first_seen.setdefault(inode, t)
                self.tcp_last_seen[inode] = t
                continue
            n_other += 1
            ids.add((int(name), target))
        with self.lock:
            self.samples.append((t, rss, n_other, n_tcp, frozenset(ids)))

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.sample()
            except (OSError, StopIteration):
                return
            self.stop_flag.wait(self.interval)

    def stop(self):
        self.stop_flag.set()
        self.join()

    def longest_tcp(self):
        with self.lock:
            if not self.tcp_first_seen:
                return 0.0
            return max(self.tcp_last_seen[i] - self.tcp_first_seen[i] for i in self.tcp_first_seen)

    def between(self, t0, t1):
        with self.lock:
            return [s for s in self.samples if t0 <= s[0] <= t1]

    @staticmethod
    def persistent(samples):
        """The non-TCP fds present in every one of samples."""
        if not samples:
            return frozenset()
        out = set(samples[0][4])
        for s in samples[1:]:
            out &= s[4]
        return frozenset(out)


def built_with_sanitizers(binary=None):
    """An ASan build holds freed memory in quarantine (RSS grows by design) and cannot run
    under valgrind: memory flatness is judged on a plain build only."""
    try:
        with open(binary or harness.TOKEND, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def read_state_refresh_token(state_dir, profile):
    try:
        with open(os.path.join(state_dir, profile + ".json")) as f:
            return json.load(f).get("refresh_token")
    except (OSError, ValueError):
        return None


def machine():
    """nproc, CPU model, kernel: for every recorded figure."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "nproc=%d cpu=%r kernel=%s" % (os.cpu_count() or 0, model, os.uname().release)


__all__ = ["harness", "FakeIdp", "FAULT_KINDS", "RecordingIdp", "start_recording_idp",
           "parse_properties", "Output", "OutputReader", "ResourceSampler", "proc_rss_kib",
           "proc_pss_kib", "proc_cpu_ticks", "built_with_sanitizers", "proc_fd_count", "read_state_refresh_token", "machine",
           "TOKEN_KEY"]
