"""The output writers on real file systems and real faults, through tests/tools/atomic-writer
(outputs_write_all on a token file and spark.properties):

- a full tmpfs, a read-only mount and a directory the user may not write: the old files stay
  byte for byte, the failure is reported with its errno, and the next write after the cause is
  gone succeeds;
- symlinked outputs, modes narrowed to 0600, owners never given away, unchanged writes skipped;
- spark.master in a new spark.properties from several kinds of kubeconfig.

Mounts and users need root (CI runs as root); those tests are skipped otherwise.
"""

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WRITER = os.path.join(harness.BUILD, "tests", "tools", "atomic-writer")
KUBECONFIGS = os.path.join(harness.SOURCE, "tests", "data", "kubeconfig")
KEY = "spark.kubernetes.authenticate.submission.oauthToken"
TEMP_PREFIX = ".aksspark-tmp."
TEST_USER = "aksspark-outputs"
IS_ROOT = os.geteuid() == 0


def ensure_test_user():
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
                   check=True, capture_output=True)
    return pwd.getpwnam(TEST_USER)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class OutputsTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(WRITER), WRITER)
        self.tmp = tempfile.mkdtemp(prefix="aksspark-outputs.")
        os.chmod(self.tmp, 0o755)  # the test user must reach its directory inside
        self.mounts = []

    def tearDown(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mount_tmpfs(self, name, size="64k"):
        path = os.path.join(self.tmp, name)
        os.mkdir(path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", path], check=True)
        self.mounts.append(path)
        return path

    def write(self, token, token_file=None, props=(), kubeconfig=None, user=None):
        """Runs outputs_write_all once; returns (answer, stderr)."""
        args = [WRITER, "outputs"]
        if token_file:
            args += ["--token-file", token_file]
        for p in props:
            args += ["--props", p]
        if kubeconfig:
            args += ["--kubeconfig", kubeconfig]
        args.append(token)
        if user:
            args = ["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid, "--clear-groups", "--"] + args
        proc = subprocess.run(args, capture_output=True, timeout=30)
        self.assertIn(proc.returncode, (0, 1), proc.stderr)
        answer = json.loads(proc.stdout.decode().splitlines()[-1])
        self.assertEqual(proc.returncode, 0 if answer["result"] == 0 else 1)
        self.assertNotIn(token.encode(), proc.stderr, "the token reached a log line")
        for out in answer["outputs"]:
            self.assertNotIn(token, out["message"] or "", "the token reached a status message")
        return answer, proc.stderr.decode()

    def temps(self, d):
        return [n for n in os.listdir(d) if n.startswith(TEMP_PREFIX)]

    def assert_fault_kept_old_files(self, d, errno_name, make_fault, clear_fault, user=None):
        token_file = os.path.join(d, "oauthToken")
        props = os.path.join(d, "spark.properties")
        with open(props, "wb") as f:
            f.write(b"# mine\r\nspark.master k8s://https://mine:443\r\n" + KEY.encode() + b"=x\r\n")
        if user:
            os.chown(props, user.pw_uid, user.pw_gid)
        answer, _ = self.write("first.token", token_file, [props], user=user)
        self.assertEqual(answer["result"], 0)
        before = {p: read(p) for p in (token_file, props)}
        modes = {p: os.stat(p).st_mode for p in before}

        make_fault()
        try:
            new_token = "second." + "t" * 20000  # needs new blocks wherever it goes
            answer, log = self.write(new_token, token_file, [props], user=user)
            self.assertEqual(answer["errno"], errno_name)
            self.assertFalse(answer["all_ok"])
            for out in answer["outputs"]:
                self.assertTrue(out["attempted"])
                self.assertEqual(out["errno"], errno_name, out)
                self.assertTrue(out["message"], out)
                self.assertIn(os.strerror(-out["result"]), out["message"])
                self.assertIn(out["path"], log)  # each failure is logged with its path
            for p, data in before.items():
                self.assertEqual(read(p), data, "%s changed by a failed write" % p)
                self.assertEqual(os.stat(p).st_mode, modes[p])
            self.assertEqual(self.temps(d), [])
        finally:
            clear_fault()

        answer, _ = self.write(new_token, token_file, [props], user=user)
        self.assertEqual(answer["result"], 0, answer)
        self.assertTrue(answer["all_ok"])
        self.assertEqual(read(token_file), new_token.encode())
        self.assertEqual(read(props), b"# mine\r\nspark.master k8s://https://mine:443\r\n" + KEY.encode() + b"="
                         + new_token.encode() + b"\r\n")
        self.assertEqual(self.temps(d), [])

    @unittest.skipUnless(IS_ROOT, "mounting a tmpfs needs root")
    def test_full_filesystem(self):
        d = self.mount_tmpfs("full")
        filler = os.path.join(d, "filler")

        def fill():
            with open(filler, "wb", buffering=0) as f:
                for chunk in (4096, 1):
                    try:
                        while True:
                            f.write(b"x" * chunk)
                    except OSError as e:
                        self.assertEqual(e.errno, 28)  # ENOSPC

        self.assert_fault_kept_old_files(d, "ENOSPC", fill, lambda: os.unlink(filler))

    @unittest.skipUnless(IS_ROOT, "mounting a tmpfs needs root")
    def test_read_only_filesystem(self):
        d = self.mount_tmpfs("ro")
        self.assert_fault_kept_old_files(
            d, "EROFS",
            lambda: subprocess.run(["mount", "-o", "remount,ro", d], check=True),
            lambda: subprocess.run(["mount", "-o", "remount,rw", d], check=True))

    @unittest.skipUnless(IS_ROOT, "creating a user and switching to it needs root")
    def test_directory_without_write_permission(self):
        user = ensure_test_user()
        d = os.path.join(self.tmp, "home")
        os.mkdir(d, 0o700)
        os.chown(d, user.pw_uid, user.pw_gid)
        self.assert_fault_kept_old_files(d, "EACCES", lambda: os.chmod(d, 0o500), lambda: os.chmod(d, 0o700),
                                         user=user)

    def test_symlinked_outputs(self):
        real = os.path.join(self.tmp, "real")
        kube = os.path.join(self.tmp, "kube")
        os.mkdir(real)
        os.mkdir(kube)
        token_link = os.path.join(kube, "oauthToken")
        props_link = os.path.join(self.tmp, "spark.properties")
        os.symlink("../real/oauthToken", token_link)  # relative, to an existing file
        with open(os.path.join(real, "oauthToken"), "w") as f:
            f.write("old")
        os.symlink(os.path.join(real, "spark.properties"), props_link)  # absolute, dangling

        answer, _ = self.write("linked.token", token_link, [props_link])
        self.assertEqual(answer["result"], 0, answer)
        for link in (token_link, props_link):
            self.assertTrue(os.path.islink(link), "%s is no longer a symlink" % link)
        self.assertEqual(read(os.path.join(real, "oauthToken")), b"linked.token")
        self.assertEqual(read(os.path.join(real, "spark.properties")), (KEY + " linked.token\n").encode())
        for name in ("oauthToken", "spark.properties"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(real, name)).st_mode), 0o600)
        self.assertEqual(self.temps(real) + self.temps(kube) + self.temps(self.tmp), [])

    def test_modes_narrowed_and_logged_once(self):
        token_file = os.path.join(self.tmp, "oauthToken")
        props = os.path.join(self.tmp, "spark.properties")
        for p in (token_file, props):
            with open(p, "w") as f:
                f.write("a=b\n")
            os.chmod(p, 0o644)
        answer, log = self.write("narrow.token", token_file, [props])
        self.assertEqual(answer["result"], 0)
        for out in answer["outputs"]:
            self.assertTrue(out["narrowed_logged"])
            self.assertEqual(stat.S_IMODE(os.stat(out["path"]).st_mode), 0o600)
            self.assertEqual(log.count("Narrowed the mode of %s from 0644" % out["path"]), 1)
        # Already 0600: nothing narrowed, nothing logged.
        answer, log = self.write("narrow.token2", token_file, [props])
        self.assertNotIn("Narrowed", log)

    @unittest.skipUnless(IS_ROOT, "planting a file as another user needs root")
    def test_owner_never_given_away(self):
        """Root writing into root's sticky directory: a file another user planted there becomes
        root's (never the planter's, holding the token). In the user's own directory, the file
        is the user's, written with the user's rights."""
        user = ensure_test_user()
        os.chmod(self.tmp, 0o1777)
        token_file = os.path.join(self.tmp, "oauthToken")
        props = os.path.join(self.tmp, "spark.properties")
        for p in (token_file, props):
            with open(p, "w") as f:
                f.write("a=b\n")
            os.chown(p, user.pw_uid, user.pw_gid)
            os.chmod(p, 0o644)
        answer, _ = self.write("owned.token", token_file, [props])
        self.assertEqual(answer["result"], 0)
        for p in (token_file, props):
            st = os.stat(p)
            self.assertEqual((st.st_uid, st.st_gid), (0, 0), p)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(read(token_file), b"owned.token")

        home = os.path.join(self.tmp, "home")
        os.mkdir(home, 0o755)
        os.chown(home, user.pw_uid, user.pw_gid)
        token_file = os.path.join(home, "kube", "oauthToken")
        answer, _ = self.write("hers.token", token_file)
        self.assertEqual(answer["result"], 0)
        for p in (token_file, os.path.dirname(token_file)):
            self.assertEqual(os.stat(p).st_uid, user.pw_uid, p)

    def test_unchanged_write_skipped(self):
        token_file = os.path.join(self.tmp, "kube", "oauthToken")
        props = os.path.join(self.tmp, "spark.properties")
        self.assertEqual(self.write("same.token", token_file, [props])[0]["result"], 0)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(token_file)).st_mode), 0o700)
        before = {p: os.stat(p) for p in (token_file, props)}
        answer, _ = self.write("same.token", token_file, [props])
        self.assertEqual(answer["result"], 0)
        self.assertTrue(answer["all_ok"])
        for p, st in before.items():
            now = os.stat(p)
            self.assertEqual((now.st_ino, now.st_mtime_ns), (st.st_ino, st.st_mtime_ns), "%s was rewritten" % p)
        # A different token is written (new inode: a rename, not an in-place write).
        self.write("other.token", token_file, [props])
        self.assertNotEqual(os.stat(token_file).st_ino, before[token_file].st_ino)

    def test_kubeconfig_variants(self):
        cases = [
            ("several-contexts.yaml", "spark.master k8s://https://prod.hcp.northeurope.azmk8s.io:443\n", None),
            ("aks.yaml", "spark.master k8s://https://spark-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443\n", None),
            ("no-current-context.yaml", None, "it has no usable current-context"),
            ("unknown-current-context.yaml", None, "it has no usable current-context"),
            ("cluster-without-server.yaml", None, "cluster has no server"),
            ("not-yaml.yaml", None, "not valid YAML"),
            ("does-not-exist.yaml", None, "it does not exist"),
        ]
        for i, (name, master, warning) in enumerate(cases):
            with self.subTest(kubeconfig=name):
                props = os.path.join(self.tmp, "new-%d" % i, "spark.properties")
                answer, log = self.write("k.token", props=[props], kubeconfig=os.path.join(KUBECONFIGS, name))
                self.assertEqual(answer["result"], 0, answer)  # a bad kubeconfig never fails the write
                self.assertEqual(read(props).decode(), KEY + " k.token\n" + (master or ""))
                if warning:
                    self.assertIn(warning, log)
                    self.assertIn(name, log)
                else:
                    self.assertNotIn("warning", log)

        # An existing file keeps its own spark.master, whatever the kubeconfig says.
        props = os.path.join(self.tmp, "existing.properties")
        with open(props, "w") as f:
            f.write("spark.master k8s://https://mine:443\n")
        answer, _ = self.write("k.token", props=[props], kubeconfig=os.path.join(KUBECONFIGS, "aks.yaml"))
        self.assertEqual(read(props).decode(), "spark.master k8s://https://mine:443\n" + KEY + " k.token\n")


if __name__ == "__main__":
    unittest.main()
