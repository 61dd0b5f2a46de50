"""`aksspark-tokenctl init` as a new user runs it: from kubeconfigs shaped as `az aks
get-credentials` writes them (kubelogin exec with v1beta1 and every argument, the older azure
auth-provider, several contexts with a kind cluster and an admin certificate among them, the
sovereign clouds, kubelogin's other --login kinds) to a config.ini that `--check-config` accepts,
written 0600 in a 0700 directory and never over an existing file without --force; then the real
daemon signs in with it against the local identity provider (which accepts only the client ids
of the kubeconfig) and writes the token to every output."""

import json
import os
import re
import shutil
import stat
import subprocess
import unittest

import harness
from harness import Env

KUBECONFIGS = os.path.join(harness.SOURCE, "tests", "data", "kubeconfig")
SECRETS_IN_KUBECONFIGS = ("do-not-copy-this-spn-secret", "do-not-copy-this-password",
                          "0123456789abcdef0123456789abcdef", "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt")


def run(args, env, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def profiles_of(text):
    """{profile: {key: value}} of a config.ini written by init."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^\[profile (.+)\]$", line)
        if m:
            cur = out.setdefault(m.group(1), {})
        elif cur is not None and "=" in line and not line.startswith(";"):
            k, v = line.split("=", 1)
            cur[k.strip()] = v.strip()
    return out


class InitTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(prefix="aksspark-it-init-")
        self.env.__enter__()
        self.config = os.path.join(self.env.home, ".config", "aksspark-tokend", "config.ini")

    def tearDown(self):
        self.env.__exit__(None, None, None)

    def environ(self, **extra):
        e = self.env.daemon_environment()
        e.pop("KUBECONFIG", None)
        e.update(extra)
        return e

    def kubeconfig(self, name, dest=None):
        """A copy of tests/data/kubeconfig/NAME in the test's home (as az writes it there)."""
        dest = dest or os.path.join(self.env.home, ".kube", "config")
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        shutil.copy(os.path.join(KUBECONFIGS, name), dest)
        return dest

    def init(self, *args, env=None):
        p = run([harness.TOKENCTL, "init"] + list(args), env or self.environ())
        self.env.client_stderr.append(p.stderr)
        self.env.client_stderr.append(p.stdout)
        for s in SECRETS_IN_KUBECONFIGS:
            self.assertNotIn(s, p.stdout + p.stderr)
        return p

    def check_config(self, path=None):
        p = run([harness.TOKEND, "--check-config", "--config", path or self.config], self.environ())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def written(self):
        with open(self.config) as f:
            text = f.read()
        for s in SECRETS_IN_KUBECONFIGS:
            self.assertNotIn(s, text)
        return text

    def daemon_knows(self, key, value):
        """Whether this build's daemon reads a profile key (other branches add auth and
        kubeconfig_output): init must write exactly what the daemon reads."""
        path = self.env.path("probe-%s.ini" % key)
        with open(path, "w") as f:
            # With the kubeconfig that kubeconfig_output needs, as init always writes it.
            f.write("[profile default]\ntenant = contoso.onmicrosoft.com\nkubeconfig = ~/.kube/config\n%s = %s\n"
                    % (key, value))
        return run([harness.TOKEND, "--check-config", "--config", path], self.environ()).returncode == 0

    def point_at_idp(self, idp, text, extra=None):
        """The real clouds are out of reach: authority_host becomes the local provider (with its
        CA); every other line stays as init wrote it. extra: {profile: [lines]} added."""
        out, cur = [], None
        for line in text.splitlines():
            m = re.match(r"^\[profile (.+)\]$", line)
            if m:
                cur = m.group(1)
            if line.startswith("authority_host"):
                out.append("authority_host = %s" % idp.url)
                out.append("ca_file = %s" % idp.ca_file)
                out.extend((extra or {}).get(cur, []))
            else:
                out.append(line)
        out += ["", "[daemon]", "log_level = debug", "http_timeout = 5s"]
        with open(self.config, "w") as f:
            f.write("\n".join(out) + "\n")

    # ---- what init writes ----------------------------------------------------------------

    def test_kubelogin_from_the_default_kubeconfig(self):
        self.kubeconfig("az-kubelogin.yaml")
        p = self.init()
        self.assertEqual(p.returncode, 0, p.stderr)
        st = os.stat(self.config)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.config)).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(self.config))).st_mode), 0o700)
        profiles = profiles_of(self.written())
        self.assertEqual(list(profiles), ["default"])
        d = profiles["default"]
        self.assertEqual(d["tenant"], "0b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d")
        self.assertEqual(d["client_id"], "80faf920-1908-4b52-b5ef-a8e7bedfc67a")
        self.assertEqual(d["server_id"], "6dae42f8-4368-4678-94ff-3960e28e3630")
        self.assertEqual(d["authority_host"], "https://login.microsoftonline.com")
        self.assertEqual(d["kubeconfig"], "~/.kube/config")
        self.assertEqual(d["kubeconfig_context"], "spark-prod")
        self.assertEqual("kubeconfig_output" in d, self.daemon_knows("kubeconfig_output", "~/.kube/x.yaml"))
        self.assertIn("profile default: tenant 0b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", self.check_config())
        # What it wrote and what to run next.
        self.assertIn("Wrote ~/.config/aksspark-tokend/config.ini: 1 profile from ~/.kube/config", p.stdout)
        self.assertIn("systemctl --user enable --now aksspark-tokend.socket", p.stdout)
        self.assertIn("aksspark-tokenctl login", p.stdout)

    def test_never_over_an_existing_file_without_force(self):
        self.kubeconfig("az-kubelogin.yaml")
        os.makedirs(os.path.dirname(self.config), mode=0o700)
        with open(self.config, "w") as f:
            f.write("; mine\n")
        p = self.init()
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists already; pass --force", p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertEqual(harness.read(self.config), "; mine\n")
        p = self.init("--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("[profile default]", self.written())
        self.assertEqual(stat.S_IMODE(os.stat(self.config).st_mode), 0o600)

    def test_kubeconfig_variable_and_option(self):
        first = self.kubeconfig("az-azure-provider.yaml", self.env.path("first.yaml"))
        second = self.kubeconfig("az-kubelogin.yaml", self.env.path("second.yaml"))
        p = self.init(env=self.environ(KUBECONFIG="::%s:%s" % (first, second)))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(profiles_of(self.written())["default"]["kubeconfig"], first)
        p = self.init("--force", "--kubeconfig", second, env=self.environ(KUBECONFIG=first))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(profiles_of(self.written())["default"]["kubeconfig"], second)
        # --config writes elsewhere.
        other = self.env.path("elsewhere", "c.ini")
        p = self.init("--config", other, "--kubeconfig", second)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_config(other)

    def test_several_contexts_and_what_is_skipped(self):
        self.kubeconfig("az-several.yaml")
        p = self.init()
        self.assertEqual(p.returncode, 0, p.stderr)
        profiles = profiles_of(self.written())
        self.assertEqual(sorted(profiles), ["aks-dev", "default"])
        self.assertEqual(profiles["default"]["kubeconfig_context"], "aks-prod")  # the current context
        self.assertEqual(profiles["aks-dev"]["kubeconfig_context"], "aks-dev")
        self.assertEqual(profiles["aks-dev"]["tenant"], "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f")
        self.assertRegex(p.stdout, r"skipped context kind-kind: .*client certificate")
        self.assertRegex(p.stdout, r"skipped context aks-prod-admin: .*client certificate")
        self.assertIn("aksspark-tokenctl --profile aks-dev login", p.stdout)
        out = self.check_config()
        self.assertIn("profile aks-dev:", out)
        # Only the contexts named.
        p = self.init("--force", "--context", "aks-dev")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(list(profiles_of(self.written())), ["aks-dev"])
        p = self.init("--force", "--context", "aks-dev", "--context", "nope")
        self.assertEqual(p.returncode, 64)
        self.assertIn("no context named 'nope'", p.stderr)

    def test_sovereign_clouds(self):
        self.kubeconfig("az-sovereign.yaml")
        p = self.init()
        self.assertEqual(p.returncode, 0, p.stderr)
        profiles = profiles_of(self.written())
        self.assertEqual(profiles["default"]["authority_host"], "https://login.microsoftonline.us")
        self.assertEqual(profiles["cn-aks"]["authority_host"], "https://login.chinacloudapi.cn")
        self.assertNotIn("stack-aks", profiles)
        self.assertRegex(p.stdout, r"skipped context stack-aks: .*AzurePublicCloud")
        self.check_config()

    def test_login_kinds(self):
        self.kubeconfig("az-logins.yaml")
        p = self.init()
        self.assertEqual(p.returncode, 0, p.stderr)
        profiles = profiles_of(self.written())
        self.check_config()
        self.assertEqual(profiles["default"]["tenant"], "0e1f2a3b-4c5d-4e6f-9a7b-9c0d1e2f3a4b")  # --flag=value, -t
        self.assertRegex(p.stdout, r"skipped context aks-ropc: .*ropc")
        if self.daemon_knows("auth", "device_code"):
            self.assertEqual(profiles["aks-interactive"]["auth"], "browser")
            self.assertEqual(profiles["aks-msi"]["auth"], "managed_identity")
            self.assertEqual(profiles["aks-workload"]["auth"], "workload_identity")
            self.assertEqual(profiles["aks-azurecli"]["auth"], "azurecli")
            self.assertNotIn("tenant", profiles["aks-azurecli"])
        else:
            # This daemon reads no auth key: such contexts are skipped, and the reason says so.
            self.assertEqual(list(profiles), ["default"])
            for context, auth in (("aks-interactive", "browser"), ("aks-spn", "client_secret"),
                                  ("aks-msi", "managed_identity"), ("aks-workload", "workload_identity")):
                self.assertRegex(p.stdout, r"skipped context %s: .*auth = %s" % (context, auth))

    def test_no_aks_context(self):
        self.kubeconfig("kind-only.yaml")
        p = self.init()
        self.assertEqual(p.returncode, 1)
        self.assertIn("no Azure AD (AKS) context in ~/.kube/config", p.stderr)
        self.assertRegex(p.stderr, r"skipped context kind-kind: .*client certificate")
        self.assertFalse(os.path.exists(self.config))
        # No kubeconfig at all, or not one.
        os.unlink(os.path.join(self.env.home, ".kube", "config"))
        p = self.init()
        self.assertEqual(p.returncode, 1)
        self.assertIn("az aks get-credentials", p.stderr)
        self.kubeconfig("not-yaml.yaml")
        p = self.init()
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a kubeconfig", p.stderr)
        self.assertFalse(os.path.exists(self.config))
        # A FIFO or a directory where the kubeconfig should be: refused, never a stall.
        os.unlink(os.path.join(self.env.home, ".kube", "config"))
        os.mkfifo(os.path.join(self.env.home, ".kube", "config"))
        p = self.init()
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a regular file", p.stderr)
        # Options of init belong to init.
        p = run([harness.TOKENCTL, "status", "--force"], self.environ())
        self.assertEqual(p.returncode, 64)

    # ---- and then the daemon signs in with it --------------------------------------------

    def sign_in_everywhere(self, kubeconfig, expect):
        """expect: {profile: (tenant, context server)}. Every profile signs in; the provider
        saw each profile's tenant with the kubeconfig's client id; every output has a token."""
        self.kubeconfig(kubeconfig)
        p = self.init()
        self.assertEqual(p.returncode, 0, p.stderr)
        idp = self.env.start_idp(lifetime=600, client_ids=["80faf920-1908-4b52-b5ef-a8e7bedfc67a"])
        profiles = profiles_of(self.written())
        self.assertEqual(sorted(profiles), sorted(expect))
        props = {name: os.path.join(self.env.home, "spark", "%s.properties" % name) for name in profiles}
        self.point_at_idp(idp, self.written(), {n: ["spark_properties = %s" % props[n]] for n in profiles})
        self.check_config()
        d = self.env.start_daemon(config=self.config)
        self.assertEqual(d.socket_path, os.path.join(self.env.runtime, "aksspark-tokend.sock"))
        for name in profiles:
            d.sign_in(idp, profile=name)
        for name, (tenant, server) in expect.items():
            codes = [r for r in idp.requests("devicecode") if r["status"] == 200 and r["tenant"] == tenant]
            self.assertTrue(codes, "no sign-in for %s's tenant %s" % (name, tenant))
            self.assertTrue(codes[-1]["scope"].startswith("6dae42f8-4368-4678-94ff-3960e28e3630/.default"))
            self.assertTrue([r for r in idp.requests("token") if r["status"] == 200 and r["tenant"] == tenant])
            token = json.loads(d.ctl("--profile", name, "--json", "status", check=True).stdout)
            self.assertEqual(token["state"], "valid")
            # spark.master from this profile's own context, not the current one.
            harness.wait_until(lambda: os.path.exists(props[name]), 10, "spark.properties of %s" % name)
            text = harness.read(props[name])
            self.assertIn("spark.master k8s://%s" % server, text)
            tok = d.ctl("--profile", name, "token", check=True).stdout.strip()
            self.assertTrue(idp.token_is_valid(tok))
            self.assertRegex(text, r"(?m)^spark\.kubernetes\.authenticate\.submission\.oauthToken[ =:]+%s$" % re.escape(tok))
            out = profiles[name].get("kubeconfig_output")
            if out:
                path = out.replace("~", self.env.home, 1)
                harness.wait_until(lambda: os.path.exists(path), 10, "kubeconfig_output of %s" % name)
                self.assertIn("aksspark-tokenctl", harness.read(path))
        default_token = harness.read(os.path.join(self.env.home, ".kube", "oauthToken"))
        self.assertTrue(idp.token_is_valid(default_token))

    def test_sign_in_several_contexts(self):
        self.sign_in_everywhere("az-several.yaml", {
            "default": ("3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a", "https://aks-prod-dns-33cc44dd.hcp.westeurope.azmk8s.io:443"),
            "aks-dev": ("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", "https://aks-dev-dns-11aa22bb.hcp.northeurope.azmk8s.io:443"),
        })

    def test_sign_in_azure_provider(self):
        self.sign_in_everywhere("az-azure-provider.yaml", {
            "default": ("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "https://legacy-aks-dns-0a1b2c3d.hcp.eastus.azmk8s.io:443"),
        })

    def test_sign_in_sovereign(self):
        self.sign_in_everywhere("az-sovereign.yaml", {
            "default": ("4e5f6a7b-8c9d-4e0f-9a1b-3c4d5e6f7a8b",
                        "https://gov-aks-dns-5e6f7a8b.hcp.usgovvirginia.cx.aks.containerservice.azure.us:443"),
            "cn-aks": ("5f6a7b8c-9d0e-4f1a-8b2c-4d5e6f7a8b9c",
                       "https://cn-aks-dns-9c0d1e2f.hcp.chinaeast2.cx.prod.service.azk8s.cn:443"),
        })


if __name__ == "__main__":
    unittest.main(verbosity=2)
