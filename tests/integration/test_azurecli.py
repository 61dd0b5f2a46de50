"""auth = azurecli with a real Azure CLI (Debian 12's 2.45, without expires_on, and a current
one from PyPI) signed in against the local identity provider: the daemon runs
`az account get-access-token` off its loop and writes the usual outputs from what az says."""

import json
import os
import signal
import subprocess
import time
import unittest

import harness
from harness import Env
from azcli import Az, DEBIAN_AZ, PYPI_AZ, SERVER_ID

KUBECONFIG_AZURECLI = """apiVersion: v1
kind: Config
clusters:
- name: aks
  cluster:
    server: {server}
    certificate-authority: {ca}
contexts:
- name: aks
  context:
    cluster: aks
    user: clusterUser_rg_aks
current-context: aks
preferences: {{}}
users:
- name: clusterUser_rg_aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args: [get-token, --server-id, {server_id}, --login, azurecli]
      command: kubelogin
      env: null
      installHint: kubelogin is not installed
      provideClusterInfo: false
"""

LIFETIME = 30  # seconds: the provider's tokens; az hands out a new one when < 5 min are left


def write_kubeconfig(env, idp):
    """What `az aks get-credentials` then `kubelogin convert-kubeconfig -l azurecli` write."""
    path = os.path.join(env.home, ".kube", "config")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "w") as f:
        f.write(KUBECONFIG_AZURECLI.format(server=idp.url, ca=idp.ca_file, server_id=SERVER_ID))
    return path


class AzureCliBase:
    AZ = None

    def world(self, env, **settings):
        idp = env.start_idp(lifetime=LIFETIME, **settings)
        az = Az(env, idp, self.AZ)
        self.addCleanup(az.stop)
        az.sign_in()
        return idp, az

    def profile(self, az, **keys):
        p = {"auth": "azurecli", "tenant": None, "authority_host": "https://login.microsoftonline.com",
             "server_id": SERVER_ID, "azure_config_dir": az.config_dir, "az_command": self.AZ}
        p.update(keys)
        return p

    def test_init_then_three_lifetimes(self):
        """A new user: az signed in, init on a kubeconfig converted with -l azurecli, then the
        daemon keeps every output fresh over three token lifetimes with no sign-in of its own."""
        with Env() as env:
            idp, az = self.world(env)
            write_kubeconfig(env, idp)
            # The az under test is the one on PATH (init's profile names no az_command).
            path = os.path.dirname(self.AZ) + ":" + os.environ.get("PATH", "/usr/bin:/bin")
            e = env.daemon_environment(az.environ() | {"PATH": path})
            del e["AZURE_CONFIG_DIR"]   # init's profile names none: the daemon's $AZURE_CONFIG_DIR
            p = subprocess.run([harness.TOKENCTL, "init", "--config", env.config_path], capture_output=True,
                               text=True, timeout=60, env=e)
            self.assertEqual(p.returncode, 0, p.stderr)
            text = harness.read(env.config_path)
            self.assertIn("auth           = azurecli", text)
            props = os.path.join(env.home, "spark", "spark.properties")
            with open(env.config_path, "a") as f:
                f.write("spark_properties = %s\n\n[daemon]\nlog_level = debug\n" % props)
            check = subprocess.run([harness.TOKEND, "--check-config", "--config", env.config_path],
                                   capture_output=True, text=True, env=e)
            self.assertEqual(check.returncode, 0, check.stderr)
            self.assertIn("azurecli", check.stdout)

            d = env.start_daemon(env=az.environ() | {"PATH": path})
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            out_kubeconfig = os.path.join(env.home, ".kube", "aksspark-default.yaml")
            seen = []
            start = time.time()
            while time.time() - start < 3 * LIFETIME + 5 or len(seen) < 4:
                self.assertLess(time.time() - start, 6 * LIFETIME, "tokens seen: %d" % len(seen))
                tok = harness.read(token_file).strip() if os.path.exists(token_file) else ""
                if tok and (not seen or seen[-1] != tok):
                    seen.append(tok)
                # Whatever is on disk when we look is a token the API takes.
                if tok:
                    self.assertTrue(idp.token_is_valid(tok), "an expired token on disk")
                time.sleep(0.5)
            # spark.properties carries the same, newest token.
            harness.wait_until(lambda: harness.read(token_file).strip() in harness.read(props), 10,
                               "spark.properties with the token of oauthToken")
            self.assertGreaterEqual(len(seen), 4, "the token on disk was renewed fewer than three times")
            self.assertTrue(os.path.exists(out_kubeconfig))
            # kubectl through the kubeconfig output reaches the API with az's token.
            kp = subprocess.run(["kubectl", "--kubeconfig", out_kubeconfig, "get", "--raw", "/version"],
                                capture_output=True, text=True, timeout=60,
                                env={"PATH": os.environ["PATH"], "HOME": env.home,
                                     "XDG_RUNTIME_DIR": env.runtime})
            self.assertEqual(kp.returncode, 0, kp.stderr)
            self.assertEqual(json.loads(kp.stdout)["major"], "1")
            # No sign-in of its own: every token came from az (client credentials of its service
            # principal), none from a device code or a refresh token of the daemon's.
            self.assertEqual(idp.requests("devicecode"), [])
            grants = {r["grant_type"] for r in idp.requests("token")}
            self.assertEqual(grants, {"client_credentials"})
            st = d.status()
            self.assertEqual(st["state"], "valid", st)
            # Nothing of az's is stored.
            for top, _, files in os.walk(env.state if os.path.isdir(env.state) else env.home):
                for name in files:
                    if name.endswith(".json") and "state" in top:
                        self.assertNotIn(seen[-1], harness.read(os.path.join(top, name)))

    def test_logout_is_login_required(self):
        with Env() as env:
            idp, az = self.world(env)
            env.write_config({"default": self.profile(az)})
            d = env.start_daemon(env=az.environ())
            harness.wait_until(lambda: d.status().get("state") == "valid", 60, "a token from az")
            az.sign_out()
            p = d.ctl("refresh")
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("az login", p.stderr)
            st = d.status()
            self.assertEqual(st["state"], "login_required", st)
            self.assertIn("az login", st["last_error"])
            # login says what to do instead of starting a sign-in of the daemon's own.
            p = d.ctl("login")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("az login", p.stderr)
            # A new az login is picked up at the next refresh.
            az.log_in()
            p = d.ctl("refresh")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(d.status()["state"], "valid")

    def test_hanging_az_is_killed_and_retried(self):
        with Env() as env:
            idp, az = self.world(env)
            count, pids = env.path("az-runs"), env.path("az-pids")
            wrapper = env.path("az-wrapper")
            with open(wrapper, "w") as f:
                # The first run hangs, with a child of its own; every later one is the real az.
                f.write("#!/bin/sh\necho run >> %s\n"
                        "if [ $(wc -l < %s) -eq 1 ]; then sleep 1000 & echo $$ $! > %s; wait; fi\n"
                        "exec %s \"$@\"\n" % (count, count, pids, self.AZ))
            os.chmod(wrapper, 0o755)
            env.write_config({"default": self.profile(az, az_command=wrapper)})
            d = env.start_daemon(env=az.environ())
            harness.wait_until(lambda: os.path.exists(pids), 10, "the hanging az")
            hung = [int(x) for x in harness.read(pids).split()]
            started = time.monotonic()
            slowest = 0.0
            while time.monotonic() - started < 25:
                t = time.monotonic()
                self.assertEqual(d.status()["state"], "refreshing")
                slowest = max(slowest, time.monotonic() - t)
                time.sleep(0.5)
            self.assertLess(slowest, 0.1, "the socket answered in %.0f ms while az hung" % (slowest * 1000))
            harness.wait_until(lambda: d.status().get("state") == "valid", 60, "a token after the retry")
            self.assertGreaterEqual(time.monotonic() - started, 25)
            self.assertIn("did not answer within 30s", d.log())
            for pid in hung:   # the whole process group went
                self.assertFalse(os.path.exists("/proc/%d" % pid) and
                                 "Z" not in harness.read("/proc/%d/stat" % pid).split()[2])
            self.assertGreaterEqual(len(harness.read(count).split()), 2)


    def test_reload_while_az_runs(self):
        """A reload (SIGHUP, then the socket's) while az runs and then fails: what az's end is
        told must not be read through the configuration the reload freed (under ASan a
        use-after-free kills the daemon); the next run gives a token."""
        with Env() as env:
            idp, az = self.world(env)
            hold, started = env.path("az-hold"), env.path("az-started")
            wrapper = env.path("az-wrapper")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nif [ -e %s ]; then rm -f %s; touch %s; sleep 3; exit 3; fi\n"
                        "exec %s \"$@\"\n" % (hold, hold, started, self.AZ))
            os.chmod(wrapper, 0o755)
            env.write_config({"default": self.profile(az, az_command=wrapper)})
            d = env.start_daemon(env=az.environ())
            harness.wait_until(lambda: d.status().get("state") == "valid", 60, "the first token")
            for how in ("sighup", "socket"):
                for path in (started,):
                    if os.path.exists(path):
                        os.unlink(path)
                open(hold, "w").close()
                refresh = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "refresh"],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    harness.wait_until(lambda: os.path.exists(started), 20, "az held")
                    if how == "sighup":
                        reloads = d.log().count("Configuration reloaded")
                        d.proc.send_signal(signal.SIGHUP)
                        harness.wait_until(lambda: d.log().count("Configuration reloaded") > reloads, 10,
                                           "the reload")
                    else:
                        self.assertTrue(d.request({"op": "reload"})["ok"])
                    refresh.communicate(timeout=30)
                except BaseException:
                    refresh.kill()
                    refresh.communicate()
                    raise
                self.assertIsNone(d.proc.poll(), "the daemon died:\n" + d.log()[-4000:])
                self.assertIn("exited with status 3", d.log())
                harness.wait_until(lambda: d.status().get("state") == "valid", 60, "a token after the retry")
            self.assertNotIn("AddressSanitizer", d.log())


class DebianAzureCliTest(AzureCliBase, unittest.TestCase):
    AZ = DEBIAN_AZ


class PypiAzureCliTest(AzureCliBase, unittest.TestCase):
    AZ = PYPI_AZ


class AzNotInstalledTest(unittest.TestCase):
    def test_check_config_says_az_is_missing(self):
        with Env() as env:
            env.write_config({"default": {"auth": "azurecli", "tenant": None}}, idp=False)
            e = env.daemon_environment({"PATH": env.path("empty-bin")})
            p = subprocess.run([harness.TOKEND, "--check-config", "--config", env.config_path],
                               capture_output=True, text=True, env=e)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("needs the Azure CLI", p.stderr)
            self.assertIn("az is not found on PATH", p.stderr)
            env.write_config({"default": {"auth": "azurecli", "tenant": None,
                                          "az_command": env.path("no", "az")}}, idp=False)
            p = subprocess.run([harness.TOKEND, "--check-config", "--config", env.config_path],
                               capture_output=True, text=True, env=e)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("is not an executable file", p.stderr)


if __name__ == "__main__":
    unittest.main()
