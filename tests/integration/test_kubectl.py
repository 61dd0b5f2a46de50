"""kubectl using `aksspark-tokenctl exec-credential` as its exec credential plugin, against the
local identity provider's Kubernetes API stand-in, which checks the bearer token."""

import json
import os
import shutil
import subprocess
import unittest

import harness
from harness import Env

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

KUBECONFIG = """apiVersion: v1
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
    user: aksspark
current-context: aks
users:
- name: aksspark
  user:
    exec:
      apiVersion: {api_version}
      command: {tokenctl}
      args: ["--socket", "{socket}", "exec-credential"]
      interactiveMode: Never
      provideClusterInfo: false
"""


@unittest.skipUnless(os.path.exists(KUBECTL), "kubectl is not installed")
class KubectlTest(unittest.TestCase):
    def kubeconfig(self, env, idp, d, api_version="client.authentication.k8s.io/v1"):
        path = env.path("kubeconfig-%s" % api_version.rsplit("/", 1)[-1])
        with open(path, "w") as f:
            f.write(KUBECONFIG.format(server=idp.url, ca=idp.ca_file, api_version=api_version,
                                      tokenctl=harness.TOKENCTL, socket=d.socket_path))
        return path

    def kubectl(self, env, kubeconfig, *args):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": env.home, "KUBECONFIG": kubeconfig}
        p = subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, timeout=60, env=e)
        env.client_stderr.append(p.stderr)
        return p

    def test_kubectl_with_exec_plugin(self):
        with Env() as env:
            idp = env.start_idp(lifetime=600)
            env.write_config()
            d = env.start_daemon()
            kc = self.kubeconfig(env, idp, d)

            # Before a sign-in kubectl fails, and the plugin's message tells the person what to do.
            p = self.kubectl(env, kc, "get", "--raw", "/api/v1/namespaces/default/pods")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("login", p.stderr)
            self.assertEqual([r for r in idp.requests("api") if r["status"] == 200], [])

            d.sign_in(idp, user="alice@contoso.com")
            for version in ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"):
                kc = self.kubeconfig(env, idp, d, version)
                p = self.kubectl(env, kc, "get", "--raw", "/api/v1/namespaces/default/pods")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(p.stdout)["kind"], "PodList")
                last = idp.requests("api")[-1]
                self.assertEqual(last["status"], 200)
                self.assertEqual(last["user"], "alice@contoso.com")
                self.assertEqual(last["path"], "/api/v1/namespaces/default/pods")

            # After a refresh the next kubectl call carries the new token.
            token = d.request({"op": "token"})["access_token"]
            self.assertTrue(d.request({"op": "refresh"}, timeout=30)["ok"])
            new = d.request({"op": "token"})["access_token"]
            self.assertNotEqual(new, token)
            p = self.kubectl(env, kc, "get", "--raw", "/api/v1/namespaces/default/pods")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(idp.requests("api")[-1]["status"], 200)

            # A daemon that is gone: kubectl fails with the plugin's hint.
            d.stop()
            p = self.kubectl(env, kc, "get", "--raw", "/api/v1/namespaces/default/pods")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("aksspark-tokend is not running", p.stderr)

    def test_without_the_plugin_the_stand_in_refuses(self):
        # The check above means something only if the API stand-in refuses other tokens.
        with Env() as env:
            idp = env.start_idp()
            path = env.path("kubeconfig-anon")
            with open(path, "w") as f:
                head = KUBECONFIG.split("users:")[0].format(server=idp.url, ca=idp.ca_file)
                f.write(head + "users:\n- name: aksspark\n  user:\n    token: not-a-token-it-issued\n")
            p = self.kubectl(env, path, "get", "--raw", "/api/v1/namespaces/default/pods")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("Unauthorized", p.stderr)
            self.assertEqual(idp.requests("api")[-1]["status"], 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
