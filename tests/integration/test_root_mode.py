"""A daemon run as root writes a person's file only as that person, under the units' own
seccomp filters (issue 20, item 3; interface.md "More robustness promises").

Boots a real systemd as PID 1 over an overlay root (pid1.py), and runs the outputs writer of the
build (tests/tools/atomic-writer: outputs_write_all() once, the daemon's own worker code) with
`systemd-run` and the SystemCallFilter=/SystemCallErrorNumber= lines read from the shipped
unit files: as root, as a `--allow-root` unit would, and as the person, as the template does.
Checks: a person's ~/.kube pointed at a root-only directory is refused (nothing written there);
the person's own link in a sticky directory is followed by the person's own daemon (not by
root: fs.protected_symlinks' rule); a file another user planted in root's sticky directory becomes
root's, never the planter's; the filter is really in force (chroot is refused). Needs root.
"""

import json
import os
import re
import unittest

import harness
import pid1

WRITER = os.path.join(harness.BUILD, "tests", "tools", "atomic-writer")
WRITER_INSIDE = "/usr/local/libexec/aksspark-atomic-writer"
UNITS = [os.path.join(harness.SOURCE, "systemd", u) for u in ("aksspark-tokend@.service.in",
                                                             "aksspark-tokend.service.in")]
TOKEN = "eyJroot.mode.token"


def unit_filters(path):
    """The unit's seccomp lines, as systemd-run properties."""
    with open(path) as f:
        lines = [l.strip() for l in f]
    return [l for l in lines if re.match(r"(SystemCallFilter|SystemCallErrorNumber|SystemCallArchitectures|"
                                         r"NoNewPrivileges)=", l)]


@unittest.skipUnless(harness.IS_ROOT, "booting a system manager needs root")
class RootModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sys = pid1.Pid1(stage_files={WRITER_INSIDE: WRITER})
        cls.sys.start()
        try:
            for cmd in (["useradd", "-m", "-s", "/bin/sh", "alice"], ["mkdir", "-m", "0700", "/root/secret"],
                        ["mkdir", "-m", "1777", "/srv/sticky"]):
                p = cls.sys.run(*cmd)
                if p.returncode != 0:
                    raise AssertionError("%s: %s" % (cmd, p.stderr))
        except BaseException:
            cls.sys.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sys.stop()
        left = cls.sys.leftovers()
        if left:
            raise AssertionError("left behind: %s" % left)

    def host(self, path):
        return self.sys.host_path(path)

    def write_outputs(self, unit, *opts, user=None):
        props = []
        for line in unit_filters(unit):
            props += ["-p", line]
        if user:
            props += ["-p", "User=%s" % user]
        p = self.sys.run("systemd-run", "--wait", "--pipe", "--quiet", *props, WRITER_INSIDE, "outputs", *opts,
                         TOKEN, timeout=60)
        self.assertNotIn(TOKEN, p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertTrue(lines, "no answer from the writer: %s" % p.stderr)
        return json.loads(lines[-1])

    def symlink(self, target, link, owner):
        os.symlink(target, self.host(link))
        uid, gid, _ = self.sys.user(owner)
        os.lchown(self.host(link), uid, gid)

    def test_filter_is_in_force(self):
        for unit in UNITS:
            props = []
            for line in unit_filters(unit):
                props += ["-p", line]
            p = self.sys.run("systemd-run", "--wait", "--pipe", "--quiet", *props, "chroot", "/", "true")
            self.assertNotEqual(p.returncode, 0, unit)
            self.assertIn("Operation not permitted", p.stderr, unit)

    def test_root_refuses_a_link_to_a_root_only_directory(self):
        self.symlink("/root/secret", "/home/alice/.kube", "alice")
        try:
            for unit in UNITS:
                answer = self.write_outputs(unit, "--token-file", "/home/alice/.kube/oauthToken")
                self.assertNotEqual(answer["result"], 0, answer)
                self.assertFalse(os.path.exists(self.host("/root/secret/oauthToken")),
                                 "root wrote through alice's link into a root-only directory (%s)" % unit)
        finally:
            os.unlink(self.host("/home/alice/.kube"))

    def test_own_link_in_a_sticky_directory_is_followed_with_the_persons_rights(self):
        uid, _, _ = self.sys.user("alice")
        link = "/srv/sticky/alice-token"
        target = "/home/alice/token"
        self.symlink(target, link, "alice")
        try:
            # Root follows no other user's link in its sticky directory (fs.protected_symlinks).
            answer = self.write_outputs(UNITS[0], "--token-file", link)
            self.assertEqual(answer["result"], -67, answer)   # -ENOLINK
            self.assertFalse(os.path.exists(self.host(target)))
            for unit, user in ((UNITS[0], "alice"), (UNITS[1], "alice")):
                answer = self.write_outputs(unit, "--token-file", link, user=user)
                self.assertEqual(answer["result"], 0, (unit, user, answer))
                st = os.stat(self.host(target))
                self.assertEqual(st.st_uid, uid)
                self.assertEqual(st.st_mode & 0o777, 0o600)
                self.assertEqual(harness.read(self.host(target)), TOKEN)
                os.unlink(self.host(target))
        finally:
            os.unlink(self.host(link))

    def test_root_refuses_rather_than_write_as_root_when_setfsuid_is_denied(self):
        """A unit whose filter denies setfsuid (the units' filter lines before this fix): a
        person's file is not written at all, rather than written as root."""
        props = []
        for line in unit_filters(UNITS[0]):
            if not line.startswith("SystemCallFilter=setfsuid"):
                props += ["-p", line]
        p = self.sys.run("systemd-run", "--wait", "--pipe", "--quiet", *props, "-p", "SystemCallFilter=~setfsuid",
                         WRITER_INSIDE, "outputs", "--token-file", "/home/alice/denied/oauthToken", TOKEN)
        answer = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(answer["result"], -1, answer)   # -EPERM
        self.assertIn("rights of the directory's owner", answer["outputs"][0]["message"])
        self.assertFalse(os.path.exists(self.host("/home/alice/denied")))

    def test_file_planted_in_roots_sticky_directory_is_not_given_to_the_planter(self):
        planted = self.host("/srv/sticky/oauthToken")
        for unit in UNITS:
            with open(planted, "w") as f:
                f.write("planted\n")
            os.chmod(planted, 0o644)
            os.chown(planted, 65534, 65534)
            answer = self.write_outputs(unit, "--token-file", "/srv/sticky/oauthToken")
            self.assertEqual(answer["result"], 0, answer)
            st = os.stat(planted)
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600), unit)
            self.assertEqual(harness.read(planted), TOKEN)


if __name__ == "__main__":
    unittest.main()
