"""`aksspark-tokenctl init` against kubeconfigs the REAL kubelogin rewrote: an `az aks
get-credentials` kubeconfig (tests/data/kubeconfig/az-kubelogin.yaml) converted by the pinned
kubelogin's `convert-kubeconfig -l MODE` for every mode it has, and with --pop-enabled. Every
context becomes the matching profile or is skipped with why, and every profile written passes
`aksspark-tokend --check-config`. kubelogin comes from scripts/install-peers-kubelogin.sh."""

import os
import re
import shutil
import subprocess
import unittest

import harness
from harness import Env
from test_init import profiles_of, run

KUBELOGIN = os.environ.get("AKSSPARK_KUBELOGIN",
                           "/var/cache/aksspark-tokend-peers/kubelogin/kubelogin")
SOURCE_KUBECONFIG = os.path.join(harness.SOURCE, "tests", "data", "kubeconfig", "az-kubelogin.yaml")
SPN_CLIENT = "8c9d0e1f-2a3b-4c4d-9e5f-7a8b9c0d1e2f"
SECRET = "do-not-copy-this-spn-secret-kl"

# (mode, extra convert-kubeconfig flags, what init must make of it): an auth value, or a regex
# the skip reason must match. azurecli: either, so that this passes before and after the
# branch that adds `auth = azurecli` is merged.
MODES = [
    ("devicecode", [], "device_code"),
    ("interactive", [], "browser"),
    ("spn", ["--client-id", SPN_CLIENT, "--client-secret", SECRET], "client_secret"),
    ("msi", ["--client-id", "9d0e1f2a-3b4c-4d5e-8f6a-8b9c0d1e2f3a"], "managed_identity"),
    ("workloadidentity", [], "workload_identity"),
    ("azurecli", [], ("azurecli", r"Azure CLI|az login")),
    ("ropc", ["--username", "someone@example.invalid"], re.compile(r"ropc")),
    ("spn", ["--client-id", SPN_CLIENT, "--pop-enabled", "--pop-claims", "u=/ARM/ID/OF/CLUSTER"],
     re.compile(r"--pop-enabled.*proof-of-possession")),
]


@unittest.skipUnless(os.access(KUBELOGIN, os.X_OK) or os.environ.get("CI"),
                     "kubelogin not installed (scripts/install-deps.sh)")
class KubeloginInitTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(KUBELOGIN, os.X_OK), "kubelogin missing: run scripts/install-deps.sh")
        self.env = Env(prefix="aksspark-it-kubelogin-")
        self.env.__enter__()
        self.environ = self.env.daemon_environment()
        self.environ.pop("KUBECONFIG", None)

    def tearDown(self):
        self.env.__exit__(None, None, None)

    def converted(self, name, mode, flags):
        """az-kubelogin.yaml as kubelogin convert-kubeconfig left it, its context renamed NAME."""
        path = self.env.path("%s.yaml" % name)
        shutil.copy(SOURCE_KUBECONFIG, path)
        p = run([KUBELOGIN, "convert-kubeconfig", "--kubeconfig", path, "-l", mode] + flags, self.environ)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(path) as f:
            text = f.read()
        self.assertIn("--login\n      - %s" % mode if mode != "devicecode" else "get-token", text)
        if "--pop-enabled" in flags:
            self.assertIn("--pop-enabled", text)
        return text.replace("spark-prod", name)

    def test_every_convert_mode(self):
        # One kubeconfig with one context per mode, each as kubelogin wrote it.
        docs = []
        for i, (mode, flags, _) in enumerate(MODES):
            name = "k-%d-%s%s" % (i, mode, "-pop" if "--pop-enabled" in flags else "")
            docs.append((name, self.converted(name, mode, flags)))
        kube = os.path.join(self.env.home, ".kube", "config")
        os.makedirs(os.path.dirname(kube), mode=0o700, exist_ok=True)
        merged = os.pathsep.join(self.env.path("%s.yaml" % n) for n, _ in docs)
        for name, text in docs:
            with open(self.env.path("%s.yaml" % name), "w") as f:
                f.write(text)
        # kubectl's own merge, as a person would: `kubectl config view --flatten`.
        p = run(["kubectl", "config", "view", "--flatten"], dict(self.environ, KUBECONFIG=merged))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(kube, "w") as f:
            f.write(p.stdout)

        p = run([harness.TOKENCTL, "init"], self.environ)
        self.env.client_stderr.append(p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        config = os.path.join(self.env.home, ".config", "aksspark-tokend", "config.ini")
        with open(config) as f:
            written = f.read()
        self.assertNotIn(SECRET, written)
        profiles = profiles_of(written)
        by_context = {v["kubeconfig_context"]: (k, v) for k, v in profiles.items()}

        for name, _ in docs:
            mode, flags, want = MODES[int(name.split("-")[1])]
            skipped = re.search(r"skipped context %s: (.*)" % re.escape(name), p.stdout + p.stderr)
            with self.subTest(context=name):
                if isinstance(want, tuple):          # azurecli: a profile or a skip, never silence
                    auth, why = want
                    if name in by_context:
                        self.assertEqual(by_context[name][1].get("auth"), auth)
                    else:
                        self.assertIsNotNone(skipped, "context %s neither a profile nor skipped" % name)
                        self.assertRegex(skipped.group(1), why)
                elif isinstance(want, re.Pattern):
                    self.assertNotIn(name, by_context)
                    self.assertIsNotNone(skipped, "context %s not skipped" % name)
                    self.assertRegex(skipped.group(1), want)
                else:
                    self.assertIn(name, by_context, p.stdout)
                    self.assertEqual(by_context[name][1].get("auth", "device_code"), want)
                    self.assertIsNone(skipped)

        # Each profile alone passes --check-config (the whole file too).
        secret_file = os.path.join(self.env.home, ".config", "aksspark-tokend", "%s.client-secret"
                                   % by_context["k-2-spn"][0])
        with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("a-secret\n")
        p = run([harness.TOKEND, "--check-config", "--config", config], self.environ)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for profile in profiles:
            self.assertIn("profile %s:" % profile, p.stdout)
            sections = re.split(r"(?m)^(?=\[)", written)
            own = [s for s in sections if not s.startswith("[profile ") or s.startswith("[profile %s]" % profile)]
            alone = self.env.path("alone-%s.ini" % profile)
            with open(alone, "w") as f:
                f.write("".join(own))
            q = run([harness.TOKEND, "--check-config", "--config", alone], self.environ)
            self.assertEqual(q.returncode, 0, "profile %s: %s" % (profile, q.stdout + q.stderr))


if __name__ == "__main__":
    unittest.main()
