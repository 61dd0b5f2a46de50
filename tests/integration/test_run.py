"""aksspark-tokenctl run -- COMMAND: a command starts only with a fresh token, with KUBECONFIG
and AKSSPARK_TOKEN_FILE naming the profile's outputs, and never a token in its arguments or
environment."""

import json
import os
import subprocess
import unittest

import harness
from harness import Env
from test_kubeconfig_output import KubeconfigOutputWorld

ENV_DUMP = """#!/bin/sh
env > "$1"
printf '%s\\n' "$@" >> "$1"
"""


class RunTest(unittest.TestCase):
    def client_env(self, env, **extra):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": env.home,
             "XDG_RUNTIME_DIR": env.runtime}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(extra)
        return e

    def run_ctl(self, env, *args):
        p = subprocess.run([harness.TOKENCTL] + list(args), capture_output=True, text=True, timeout=120,
                           env=self.client_env(env))
        env.client_stderr.append(p.stderr)
        return p

    def test_kubectl_through_the_kubeconfig_output(self):
        with Env() as env:
            w = KubeconfigOutputWorld(env, lifetime=3600)
            d = env.start_daemon()
            d.sign_in(w.idp)
            p = self.run_ctl(env, "run", "--", "kubectl", "get", "--raw", "/version")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["major"], "1")
            last = w.idp.requests("api")[-1]
            self.assertEqual((last["path"], last["status"]), ("/version", 200))

            # What the command gets: where the outputs are, never the token.
            dump, script = env.path("env-dump"), env.path("dump.sh")
            with open(script, "w") as f:
                f.write(ENV_DUMP)
            os.chmod(script, 0o755)
            p = self.run_ctl(env, "--profile", "default", "run", "--min-valid", "2m", "--", script, dump, "x y")
            self.assertEqual(p.returncode, 0, p.stderr)
            seen = harness.read(dump)
            self.assertIn("KUBECONFIG=%s\n" % w.output, seen)
            self.assertIn("AKSSPARK_TOKEN_FILE=%s\n" % os.path.join(env.home, ".kube", "oauthToken"), seen)
            self.assertIn("\nx y\n", seen)
            token = harness.read(os.path.join(env.home, ".kube", "oauthToken")).strip()
            self.assertNotIn(token, seen)

            # A check that cannot be met: check's exit code, and the command does not start.
            os.unlink(dump)
            p = self.run_ctl(env, "run", "--min-valid", "2h", "--", script, dump)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertFalse(os.path.exists(dump))

    def test_sign_in_needed_exits_2_without_starting(self):
        with Env() as env:
            env.start_idp(lifetime=600)
            env.write_config()
            env.start_daemon()
            marker = env.path("started")
            p = self.run_ctl(env, "run", "--", "touch", marker)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("login", p.stderr)
            self.assertFalse(os.path.exists(marker))

    def test_usage(self):
        with Env() as env:
            p = self.run_ctl(env, "run")
            self.assertEqual(p.returncode, 64)
            self.assertIn("run needs a command", p.stderr)
            p = self.run_ctl(env, "run", "--min-valid", "soon", "--", "true")
            self.assertEqual(p.returncode, 64)
            # No daemon: check's 3, and the command does not start.
            marker = env.path("started")
            p = self.run_ctl(env, "run", "--", "touch", marker)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertFalse(os.path.exists(marker))


if __name__ == "__main__":
    unittest.main()
