"""aksspark-tokend --check-config against the example configuration, good files and one bad file
per kind of problem: exit 0 with one summary line per profile, or exit 78 with every problem
on stderr as file:line.

The bad files live in tests/data/config/bad-*.ini; each says what it expects in its first
lines, as "; expect: LINE: text" (one per problem, in the order they must be reported).
"""

import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("AKSSPARK_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("AKSSPARK_BUILD_DIR") or os.path.join(SOURCE, "build")
TOKEND = os.path.join(BUILD, "aksspark-tokend")
DATA = os.path.join(SOURCE, "tests", "data", "config")
EXAMPLE = os.path.join(SOURCE, "conf", "config.ini")
EXIT_CONFIG = 78

PROBLEM = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<what>.+)$")


def expectations(path):
    """The "; expect: LINE: text" comments of a data file, in order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^; expect: (\d+): (.*)$", line.rstrip("\n"))
            if m:
                out.append((int(m.group(1)), m.group(2)))
    return out


def profile_headers(path):
    """Names of the [profile NAME] sections that are not commented out."""
    with open(path, encoding="utf-8") as f:
        return re.findall(r"^\s*\[profile\s+([A-Za-z0-9_.-]+)\s*\]", f.read(), re.M)


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aksspark-config-")
        self.home = os.path.join(self.dir, "home")
        os.mkdir(self.home)
        # A clean environment: nothing from the caller's XDG or systemd variables leaks in.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "AKSSPARK_TEST_DIR": os.path.join(self.dir, "data"),
        }

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, config=None, env=None):
        args = [TOKEND, "--check-config"]
        if config is not None:
            args += ["--config", config]
        return subprocess.run(args, env=env or self.env, capture_output=True, text=True, timeout=30)

    def write(self, name, text, mode="w"):
        path = os.path.join(self.dir, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def assert_ok(self, result, n_profiles):
        self.assertEqual(result.returncode, 0, "stderr: %s" % result.stderr)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), n_profiles, result.stdout)
        return lines

    def assert_problems(self, result, path, expected):
        """Exit 78, nothing on stdout, and exactly the expected problems as path:line: text."""
        self.assertEqual(result.returncode, EXIT_CONFIG, "stdout: %s\nstderr: %s" % (result.stdout, result.stderr))
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        for line in lines:
            m = PROBLEM.match(line)
            self.assertTrue(m, "not a file:line problem: %r" % line)
            self.assertEqual(m.group("file"), path)
        self.assertEqual(len(lines), len(expected), "got:\n" + result.stderr)
        for line, (number, text) in zip(lines, expected):
            prefix = "%s:%d: " % (path, number)
            self.assertTrue(line.startswith(prefix), "%r does not start with %r" % (line, prefix))
            self.assertIn(text, line[len(prefix):])

    def test_example_config(self):
        names = profile_headers(EXAMPLE)
        self.assertGreaterEqual(len(names), 1)
        lines = self.assert_ok(self.check(EXAMPLE), len(names))
        for name, line in zip(names, lines):
            self.assertTrue(line.startswith("profile %s: tenant " % name), line)
        # Real paths, with ~ expanded to this HOME.
        self.assertIn(os.path.join(self.home, ".kube", "oauthToken"), lines[0])
        self.assertNotIn("~", lines[0])

    def test_example_config_without_runtime_dir_or_home_variable(self):
        # --check-config needs no socket; without $HOME the password database names the home.
        env = {"PATH": self.env["PATH"]}
        lines = self.assert_ok(self.check(EXAMPLE, env=env), len(profile_headers(EXAMPLE)))
        home = pwd.getpwuid(os.getuid()).pw_dir
        self.assertIn(os.path.join(home, ".kube", "oauthToken"), lines[0])

    def test_two_profiles(self):
        path = os.path.join(DATA, "good-two-profiles.ini")
        lines = self.assert_ok(self.check(path), 2)
        self.assertEqual(
            lines[0],
            "profile default: tenant 72f988bf-86f1-41af-91ab-2d7cd011db47 via https://login.microsoftonline.com, "
            "writes %s/.kube/oauthToken and %s/spark/prod.properties" % (self.home, self.home))
        self.assertEqual(
            lines[1],
            "profile lab: tenant fabrikam.onmicrosoft.com via http://127.0.0.1:8443, writes %s/.kube/oauthToken-lab, "
            "%s/data/lab.properties and %s/spark/lab2.properties" % (self.home, self.dir, self.home))

    def test_bad_files(self):
        files = sorted(glob.glob(os.path.join(DATA, "bad-*.ini")))
        self.assertGreaterEqual(len(files), 10)
        for path in files:
            with self.subTest(file=os.path.basename(path)):
                expected = expectations(path)
                self.assertTrue(expected, "%s has no '; expect:' lines" % path)
                self.assert_problems(self.check(path), path, expected)

    def test_line_too_long(self):
        # 4 KiB: inih alone would cut it into 199-byte pieces and read "tenant=evil" in the middle
        # as a key. It is one problem at its own line, and the next line keeps its number.
        long_line = "token_file = /" + "a" * 300 + "tenant=evil" + "a" * (4096 - 14 - 300 - 11)
        self.assertEqual(len(long_line), 4096)
        path = self.write("long.ini", "[profile default]\ntenant = contoso.onmicrosoft.com\n%s\nbogus = 1\n" % long_line)
        self.assert_problems(self.check(path), path, [
            (3, "line too long (4096 bytes, at most 198)"),
            (4, "unknown key 'bogus'"),
        ])

    def test_line_at_the_limit(self):
        fits = "token_file = /" + "b" * (198 - 14)
        path = self.write("fits.ini", "[profile default]\r\ntenant = contoso.onmicrosoft.com\r\n%s\r\n" % fits, "w")
        lines = self.assert_ok(self.check(path), 1)
        self.assertIn("writes /" + "b" * (198 - 14), lines[0])
        path = self.write("over.ini", "[profile default]\ntenant = contoso.onmicrosoft.com\n%sb\n" % fits)
        self.assert_problems(self.check(path), path, [(3, "line too long (199 bytes, at most 198)")])

    def test_crlf_and_bom(self):
        path = self.write("crlf.ini", b"\xef\xbb\xbf[profile default]\r\ntenant = contoso.onmicrosoft.com\r\n"
                          b"\r\nspark_properties = ~/s.properties\r\nbogus = 1\r\n", "wb")
        self.assert_problems(self.check(path), path, [(5, "unknown key 'bogus'")])

    def test_missing_file(self):
        path = os.path.join(self.dir, "nope.ini")
        result = self.check(path)
        self.assertEqual(result.returncode, EXIT_CONFIG)
        self.assertIn("%s: cannot read the configuration: No such file or directory" % path, result.stderr)

    def test_default_config_path(self):
        # $XDG_CONFIG_HOME/aksspark-tokend/config.ini, else ~/.config/..., and under a unit
        # $CONFIGURATION_DIRECTORY/config.ini first.
        def put(directory, tenant):
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "config.ini"), "w") as f:
                f.write("[profile default]\ntenant = %s\n" % tenant)

        put(os.path.join(self.home, ".config", "aksspark-tokend"), "home.example.com")
        put(os.path.join(self.dir, "xdg", "aksspark-tokend"), "xdg.example.com")
        put(os.path.join(self.dir, "unit"), "unit.example.com")

        self.assertIn("tenant home.example.com", self.assert_ok(self.check(), 1)[0])
        env = dict(self.env, XDG_CONFIG_HOME=os.path.join(self.dir, "xdg"))
        self.assertIn("tenant xdg.example.com", self.assert_ok(self.check(env=env), 1)[0])
        env["CONFIGURATION_DIRECTORY"] = os.path.join(self.dir, "unit")
        self.assertIn("tenant unit.example.com", self.assert_ok(self.check(env=env), 1)[0])

    def test_environment_variables(self):
        path = self.write("vars.ini", "[profile default]\ntenant = contoso.onmicrosoft.com\n"
                          "token_file = ${AKSSPARK_TEST_DIR}/token\nspark_properties = ${HOME}/s.properties\n")
        lines = self.assert_ok(self.check(path), 1)
        self.assertTrue(lines[0].endswith("writes %s/data/token and %s/s.properties" % (self.dir, self.home)), lines[0])
        env = dict(self.env)
        del env["AKSSPARK_TEST_DIR"]
        self.assert_problems(self.check(path, env=env), path,
                             [(3, "token_file: ${AKSSPARK_TEST_DIR} is not set in the daemon's environment")])


if __name__ == "__main__":
    if not os.access(TOKEND, os.X_OK):
        sys.exit("no %s: build first (AKSSPARK_BUILD_DIR)" % TOKEND)
    unittest.main(verbosity=2)
