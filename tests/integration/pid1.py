"""A real systemd as PID 1 of its own PID, mount, UTS, IPC and network namespaces, over an
overlay root of its own (shared/spec/testing.md, "A real system manager (PID 1)").

Never boot systemd over the real root: its boot-time systemd-tmpfiles would empty the host's
/tmp (CI's checkout, everyone's work) and it writes into /etc, /var and /run. So the boot script
builds an overlay of / on a tmpfs, pivots into it, and refuses to exec systemd unless `/` is
then an overlayfs that carries this run's marker (a file only its upper layer has). Both
halves of that check are exercised by test_pid1.py through `sabotage=` before the first boot.

What a run creates, and what stop() removes (leftovers() checks it is all gone):
- a cgroup per v1 name=systemd / v2 hierarchy, /sys/fs/cgroup/{systemd,unified}/NAME (or
  /sys/fs/cgroup/NAME on a pure v2 host): removed depth-first with rmdir;
- an empty directory TOP under /var/tmp: the tmpfs, overlay and every other mount exist only in
  the private mount namespace and vanish with it;
- processes: `unshare` and its child, systemd, with everything systemd starts in the PID
  namespace: SIGKILL of PID 1 ends them all (a timeout around unshare would not: systemd
  survives its parent).
Users created inside (useradd through nsenter) live in the overlay's /etc only.

What it must not touch: the host's kernel settings. Its hostname and domain name are its own
(UTS), so are System V IPC and POSIX queues (IPC) and the network (a loopback of its own: a
test serves it from a socket made inside, see in_netns()). /proc/sys and /sys are read-only
inside, as systemd-nspawn makes them, so boot units that would write them (systemd-sysctl,
binfmt, udev) skip themselves, and they are masked anyway with everything else that may reach
the host (module loading, device nodes, udev triggers, audit). stop() checks a sample of host
sysctls and the hostname against what they were before the run (leftovers() reports changes).
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

CGROUP_FS = "/sys/fs/cgroup"
REFUSED = 97         # the boot script's exit status when / is not this run's overlay
DRY_RUN_OK = 96      # ... when sabotage=dry-run stopped it just before exec systemd
MARKER_FILE = ".aksspark-pid1-root"

# Units this test has no use for: consoles, logins, timers of the host's packages, databases.
MASK = [
    "getty@tty1.service", "console-getty.service", "serial-getty@console.service",
    "systemd-logind.service", "cron.service", "postgresql.service", "ssh.service",
    "systemd-timesyncd.service", "systemd-pstore.service", "e2scrub_reap.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
    "fstrim.timer", "man-db.timer", "logrotate.timer", "remote-fs.target",
    "systemd-networkd.service", "systemd-resolved.service", "systemd-networkd-wait-online.service",
    # Anything that may reach the host's kernel: its settings, modules, devices, audit, hostname.
    "systemd-sysctl.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount", "systemd-modules-load.service", "kmod-static-nodes.service",
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-hwdb-update.service",
    "systemd-tmpfiles-setup-dev.service", "systemd-hostnamed.service", "systemd-random-seed.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount", "systemd-journald-audit.socket", "systemd-firstboot.service",
]

# Host settings a boot may try to change (systemd-sysctl's defaults, the distribution's sysctl.d,
# hostname setup): each run must leave them as they were.
HOST_SETTINGS = [
    "kernel/hostname", "kernel/domainname", "kernel/printk", "kernel/pid_max", "kernel/core_uses_pid",
    "kernel/core_pattern", "kernel/kptr_restrict", "kernel/dmesg_restrict", "fs/protected_fifos",
    "fs/protected_regular", "fs/protected_symlinks", "fs/protected_hardlinks", "fs/inotify/max_user_instances",
    "net/ipv4/ip_forward", "net/core/default_qdisc", "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/default/rp_filter", "vm/max_map_count", "vm/swappiness", "vm/overcommit_memory",
    "vm/dirty_ratio",
]
CLONE_NEWNET = 0x40000000


def host_settings():
    """{name: value} of HOST_SETTINGS on this host (those it has)."""
    out = {}
    for name in HOST_SETTINGS:
        try:
            with open("/proc/sys/" + name) as f:
                out[name] = f.read()
        except OSError:
            pass
    return out

# Runs as PID 1 of the new namespaces (sh -c BOOT sh TOP MARKER STAGE SABOTAGE UNIT...).
BOOT = r'''
set -eu
top=$1 marker=$2 stage=$3 sabotage=$4
shift 4
mount -t tmpfs -o mode=0755 aksspark-pid1 "$top"
mkdir "$top/upper" "$top/work" "$top/root"
[ "$sabotage" = no-marker ] || echo "$marker" > "$top/upper/MARKER_FILE"
# Files the test needs inside (the package): into the upper layer before the overlay exists.
cp -a "$stage/." "$top/upper/"
mount -t overlay overlay -o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" "$top/root"
cd "$top/root"
mount --rbind /dev dev
mount --rbind /sys sys
# Read-only, as systemd-nspawn does (the cgroup mounts below stay writable): units that would
# change the host's kernel settings then skip themselves.
mount -o remount,bind,ro sys
mount -t proc proc proc
mount --bind proc/sys proc/sys
mount -o remount,bind,ro proc/sys
mount -t tmpfs -o mode=1777 tmpfs tmp
mount -t tmpfs -o mode=0755 tmpfs run
mkdir -p .oldroot
if [ "$sabotage" != no-pivot ]; then
        pivot_root . .oldroot
        cd /
        umount -l /.oldroot
fi
fstype=$(stat -f -c %T /)
if [ "$fstype" != overlayfs ] || [ "$(cat /MARKER_FILE 2>/dev/null)" != "$marker" ]; then
        echo "pid1: / is $fstype without this run's marker, not the overlay: refusing to boot systemd" >&2
        exit REFUSED
fi
rmdir /.oldroot
# Shared, as on a booted host (systemd skips it in a container): it builds a unit's
# credentials in a namespace of its own and relies on the mount propagating back to
# /run/credentials. New peer groups of this namespace only: nothing reaches the host's mounts.
mount --make-rshared /
for unit in "$@"; do
        ln -sf /dev/null "/etc/systemd/system/$unit"
done
if [ "$sabotage" = dry-run ]; then
        echo "pid1: / is this run's overlay; dry run: not booting" >&2
        exit DRY_RUN_OK
fi
exec env -i container=lxc PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --system
'''.replace("MARKER_FILE", MARKER_FILE).replace("DRY_RUN_OK", str(DRY_RUN_OK)).replace("REFUSED", str(REFUSED))


def cgroup_hierarchies():
    """The hierarchies systemd needs a cgroup of its own in: the v1 name=systemd one and the v2
    one on a hybrid host (as here), or the v2 root alone on a unified host."""
    if os.path.isdir(os.path.join(CGROUP_FS, "unified")) and os.path.isdir(os.path.join(CGROUP_FS, "systemd")):
        return [os.path.join(CGROUP_FS, "systemd"), os.path.join(CGROUP_FS, "unified")]
    if os.path.exists(os.path.join(CGROUP_FS, "cgroup.procs")):
        return [CGROUP_FS]
    raise AssertionError("no cgroup hierarchy for systemd under %s" % CGROUP_FS)


def _remove_cgroup_tree(path, timeout=15):
    """rmdir path and everything under it, deepest first; SIGKILL stragglers in it (they can
    only be this run's: the tree is ours)."""
    deadline = time.monotonic() + timeout
    while os.path.isdir(path):
        for d, subdirs, _ in sorted(os.walk(path), key=lambda e: -e[0].count("/")):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                pass
        if os.path.isdir(path):
            if time.monotonic() > deadline:
                raise AssertionError("cannot remove cgroup %s" % path)
            time.sleep(0.05)


class Pid1:
    """One booted system manager. start(), then run()/systemctl() talk to it, stop() always."""

    def __init__(self, stage_files=None, mask=MASK, log_dir=None):
        self.name = "aksspark-pid1-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.marker = uuid.uuid4().hex
        self.top = os.path.join("/var/tmp", self.name)
        self.cgroups = [os.path.join(h, self.name) for h in cgroup_hierarchies()]
        self.stage_files = dict(stage_files or {})   # path inside -> file on the host
        self.mask = list(mask)
        self.log_dir = log_dir
        self.log_path = None
        self.proc = None     # unshare
        self.pid = None      # systemd, as the host sees it
        self._work = None
        self._stage = None
        self._reaper = None
        self._reaper_pipe = None
        self.settings_before = None

    # ---- life cycle ------------------------------------------------------------------------

    def launch(self, sabotage="none"):
        """Start the boot script; returns the unshare process. sabotage (none, no-pivot,
        no-marker, dry-run) is for checking the safety logic. Whatever fails in here is undone
        before the exception leaves."""
        if os.geteuid() != 0:
            raise AssertionError("the PID-1 harness needs root")
        try:
            return self._launch(sabotage)
        except BaseException:
            self.stop()
            raise

    def _launch(self, sabotage):
        self.settings_before = host_settings()
        self._work = tempfile.mkdtemp(prefix=self.name + "-work-", dir="/var/tmp")
        # The reaper first: if this process dies at any point from here on (SIGTERM from a test
        # runner's timeout, SIGKILL), it sees its pipe close and does what stop() would have.
        r, self._reaper_pipe = os.pipe()
        try:
            self._reaper = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--reap", self.top, self._work] + self.cgroups,
                stdin=r, stdout=subprocess.DEVNULL, start_new_session=True)
        finally:
            os.close(r)
        for cg in self.cgroups:
            os.mkdir(cg)
        os.mkdir(self.top, 0o700)
        self._stage = os.path.join(self._work, "stage")
        os.mkdir(self._stage)
        for inside, host in self.stage_files.items():
            dst = os.path.join(self._stage, inside.lstrip("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(host, dst)
        self.log_path = os.path.join(self.log_dir or self._work, "pid1-%s.log" % self.name)
        procs = [os.path.join(cg, "cgroup.procs") for cg in self.cgroups]

        def join_cgroups():    # in the child, before exec: unshare and all below live there
            me = str(os.getpid()).encode()
            for p in procs:
                fd = os.open(p, os.O_WRONLY)
                try:
                    os.write(fd, me)
                finally:
                    os.close(fd)

        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--uts", "--ipc", "--net",
                 "sh", "-c", BOOT, "sh", self.top, self.marker, self._stage, sabotage] + self.mask,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=join_cgroups, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
        return self.proc

    def start(self, timeout=120):
        """Boot; returns once the manager is `running` (every unit started, none failed)."""
        self.launch()
        try:
            deadline = time.monotonic() + timeout
            while self.pid is None:
                if self.proc.poll() is not None:
                    raise AssertionError("the boot script exited %d before systemd ran:\n%s" %
                                         (self.proc.returncode, self.log()))
                child = self._child_of(self.proc.pid)
                if child and self._comm(child) == "systemd":
                    self.pid = child
                elif time.monotonic() > deadline:
                    raise AssertionError("systemd did not start:\n%s" % self.log())
                else:
                    time.sleep(0.05)
            while not os.path.exists(self.host_path("/run/systemd/private")):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("systemd's private bus never appeared:\n%s" % self.log())
                time.sleep(0.05)
            left = max(1, deadline - time.monotonic())
            p = self.run("systemctl", "is-system-running", "--wait", timeout=left)
            state = p.stdout.strip()
            if state != "running":
                failed = self.run("systemctl", "--failed", "--no-legend", "--plain").stdout
                raise AssertionError("system state %r (%s), failed units:\n%s\n%s" % (
                    state, p.stderr.strip(), failed, self.log()[-3000:]))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """SIGKILL PID 1 (ends every process of the namespace), wait for unshare, remove the
        cgroups depth-first and the empty TOP directory. Safe to call more than once."""
        errors = []
        try:
            if self.proc is not None:
                pid = self.pid or self._child_of(self.proc.pid)
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    errors.append("unshare did not exit after SIGKILL of PID 1")
        finally:
            for cg in reversed(self.cgroups):
                try:
                    _remove_cgroup_tree(cg)
                except AssertionError as e:
                    errors.append(str(e))
            for d in (self.top,):
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    errors.append("cannot remove %s: %s" % (d, e))
            if self._work:
                shutil.rmtree(self._work, ignore_errors=True)
            if self._reaper_pipe is not None:
                os.close(self._reaper_pipe)
                self._reaper_pipe = None
            if self._reaper is not None:
                try:
                    self._reaper.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    errors.append("the reaper did not exit")
            errors += self.changed_host_settings()
        if errors:
            raise AssertionError("; ".join(errors))

    def changed_host_settings(self):
        """Host settings (HOST_SETTINGS) that differ from before the run."""
        if self.settings_before is None:
            return []
        now = host_settings()
        return ["host setting %s changed from %r to %r" % (k, v, now.get(k))
                for k, v in sorted(self.settings_before.items()) if now.get(k) != v]

    def leftovers(self):
        """What of this run is still on the host (empty when stop() did its job), including a
        host setting it changed."""
        out = self.changed_host_settings()
        if self.pid and os.path.exists("/proc/%d" % self.pid):
            out.append("process %d (PID 1) still runs" % self.pid)
        if self.proc is not None and self.proc.poll() is None:
            out.append("unshare %d still runs" % self.proc.pid)
        if self._reaper is not None and self._reaper.poll() is None:
            out.append("reaper %d still runs" % self._reaper.pid)
        for cg in self.cgroups:
            if os.path.exists(cg):
                out.append("cgroup %s" % cg)
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open("/proc/%s/cgroup" % pid) as f:
                    if "/%s" % self.name in f.read():
                        out.append("process %s in this run's cgroup" % pid)
            except OSError:
                pass
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if self.name in line:
                    out.append("mount: %s" % line.strip())
        for path in (self.top, self._work):
            if path and os.path.exists(path):
                out.append("file %s" % path)
        return out

    # ---- talking to it ---------------------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def in_netns(self, fn):
        """fn() called in a thread that entered PID 1's network namespace: a listening socket
        it makes (a test's identity provider) is on the loopback inside, reachable from there
        only. Returns what fn returned."""
        result = {}

        def run():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open("/proc/%d/ns/net" % self.pid, os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                result["value"] = fn()
            except BaseException as e:
                result["error"] = e

        t = threading.Thread(target=run)
        t.start()
        t.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def host_path(self, path):
        """The host's view of a path inside the root (through PID 1's /proc/PID/root)."""
        return "/proc/%d/root/%s" % (self.pid, path.lstrip("/"))

    def run(self, *cmd, user=None, input=None, timeout=60, env=None):
        """Run cmd inside the namespaces, as root or as user (a name inside), with a clean
        environment."""
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        prefix = ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", "-n", "--"]
        if user:
            uid, gid, home = self.user(user)
            prefix += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--init-groups", "--"]
            e.update(HOME=home, USER=user, LOGNAME=user)
        e.update(env or {})
        return subprocess.run(prefix + ["env", "-i"] + ["%s=%s" % kv for kv in e.items()] + list(cmd),
                              capture_output=True, text=True, timeout=timeout, input=input)

    def popen(self, *cmd, user, env=None):
        """Start cmd inside as user, with pipes for stdout and stderr."""
        uid, gid, home = self.user(user)
        e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "USER": user}
        e.update(env or {})
        return subprocess.Popen(["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", "-n", "--", "setpriv",
                                 "--reuid=%d" % uid, "--regid=%d" % gid, "--init-groups", "--",
                                 "env", "-i"] + ["%s=%s" % kv for kv in e.items()] + list(cmd),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def user(self, name):
        """(uid, gid, home) of a user of the root inside."""
        with open(self.host_path("/etc/passwd")) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return int(fields[2]), int(fields[3]), fields[5]
        raise KeyError(name)

    def systemctl(self, *args, timeout=60):
        return self.run("systemctl", "--no-pager", *args, timeout=timeout)

    def show(self, unit, *props):
        p = self.systemctl("show", unit, "-p", ",".join(props))
        out = {}
        for line in p.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def write(self, path, text, mode=0o644, owner=None):
        """Write a file inside the root (owner: a user name inside)."""
        host = self.host_path(path)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)
        if owner:
            uid, gid, _ = self.user(owner)
            os.chown(host, uid, gid)
        return path

    @staticmethod
    def _child_of(pid):
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    @staticmethod
    def _comm(pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                return f.read().strip()
        except OSError:
            return None


def ns_pid_to_host(pid1, ns_pid):
    """The host's pid of a process that PID 1's namespace calls ns_pid (NSpid in status)."""
    for p in (x for x in os.listdir("/proc") if x.isdigit()):
        try:
            with open("/proc/%s/status" % p) as f:
                m = re.search(r"^NSpid:\s+(.*)$", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids = m.group(1).split()
            if len(ids) >= 2 and ids[-1] == str(ns_pid) and _in_ns(int(p), pid1.pid):
                return int(p)
    return None


def _in_ns(pid, pid1):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid) == os.readlink("/proc/%d/ns/pid" % pid1)
    except OSError:
        return False


def _reap(top, work, cgroups):
    """The reaper: wait for the owner's pipe to close, then kill every process of the run's
    cgroups (unshare, PID 1 and all below: nothing else is in them) and remove what it made."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while os.read(0, 4096):
        pass
    for cg in reversed(cgroups):
        try:
            _remove_cgroup_tree(cg, timeout=60)
        except AssertionError:
            pass
    try:
        os.rmdir(top)
    except OSError:
        pass
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--reap":
        _reap(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1:] == ["--boot"]:
        # For the test of the reaper: boot, say who, wait to be killed.
        system = Pid1().start()
        print(system.pid, system.name, system.top, *system.cgroups, flush=True)
        while True:
            time.sleep(3600)
