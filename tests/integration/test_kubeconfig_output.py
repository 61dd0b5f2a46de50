"""The kubeconfig output, used as it is by real long-running clients.

A profile with kubeconfig_output (the README's long-running-driver setup, read from the README
itself) signs in once; then kubectl in a loop, the official Python client (python3-kubernetes)
and the official Node client (@kubernetes/client-node) each run through that file for at least
three token lifetimes against the identity provider's Kubernetes API stand-in, which checks the
bearer token on every request, and none of their requests is refused. Beside them a client that
read oauthTokenFile once (what Spark's fabric8 does with a token it is handed) is refused once
its token expired: why the README points long-running drivers at the kubeconfig.

Nothing here waits for a refresh at a given time: the clients run for a fixed span, and the
assertions count what the API stand-in saw (how many tokens each client went through, whether a
request was refused)."""

import base64
import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import Env, wait_until

# One token's life (s). Short, so three lifetimes take a minute; raise it (the environment
# variable) when the daemon refreshes no more often than some floor that this would undercut.
LIFETIME = float(os.environ.get("AKSSPARK_TEST_LONG_CLIENT_LIFETIME", "20"))
# How long each client runs: three lifetimes and a little more.
SPAN = 3 * LIFETIME + 5
# A request sent a moment before its token expired may arrive a moment after: the stand-in
# accepts that (a real API server caches token reviews for longer). The held token is refused
# from then on.
LEEWAY = 1.0

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
DEBIAN_PYTHON = "/usr/bin/python3"   # python3-kubernetes is installed for Debian's Python
NODE = shutil.which("node") or "/usr/bin/node"
NODE_DIR = os.path.join(harness.SOURCE, "tests", "node")
PYTHON_CLIENT = os.path.join(harness.SOURCE, "tests", "clients", "python_client.py")
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

# What `az aks get-credentials` writes: CA data inline, the user a kubelogin exec entry.
SOURCE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca_data}
    server: {server}
  name: spark
contexts:
- context:
    cluster: spark
    namespace: {namespace}
    user: clusterUser_rg-spark_spark
  name: spark
current-context: spark
users:
- name: clusterUser_rg-spark_spark
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]
"""


def readme_setup():
    """The profile keys and the KUBECONFIG of the README's long-running-driver setup."""
    text = harness.read(os.path.join(harness.SOURCE, "README.md"))
    section = text.split("### A driver that runs longer than a token", 1)[1].split("\n### ", 1)[0]
    ini = re.search(r"```ini\n(.*?)```", section, re.S).group(1)
    keys = {}
    for line in ini.splitlines():
        line = line.split(" ;", 1)[0].strip()
        if "=" in line and not line.startswith("["):
            k, v = (x.strip() for x in line.split("=", 1))
            keys[k] = v
    kubeconfig = re.search(r"^export KUBECONFIG=(\S+)$", section, re.M).group(1)
    return keys, kubeconfig


def expand(path, home):
    return os.path.join(home, path[2:]) if path.startswith("~/") else path


def has_node_client():
    return os.path.exists(os.path.join(NODE_DIR, "node_modules", "@kubernetes", "client-node"))


def has_python_client():
    return subprocess.run([DEBIAN_PYTHON, "-c", "import kubernetes"], capture_output=True).returncode == 0


class KubeconfigOutputWorld:
    """A signed-in daemon whose profile is the README's setup, with a source kubeconfig."""

    def __init__(self, env, lifetime, namespace="spark-alice", keys=None):
        self.env = env
        self.idp = env.start_idp(lifetime=lifetime, api_expiry_leeway=LEEWAY)
        readme_keys, kubeconfig = readme_setup()
        self.keys = dict(readme_keys if keys is None else keys)
        self.source = expand(self.keys["kubeconfig"], env.home)
        self.output = expand(self.keys["kubeconfig_output"], env.home)
        self.kubeconfig_env = expand(kubeconfig, env.home)
        self.namespace = namespace
        self.write_source()
        self.keys["token_file"] = "~/.kube/oauthToken"
        env.write_config({"default": self.keys})

    def write_source(self, namespace=None, server=None):
        os.makedirs(os.path.dirname(self.source), mode=0o700, exist_ok=True)
        with open(self.idp.ca_file, "rb") as f:
            ca_data = base64.b64encode(f.read()).decode()
        with open(self.source, "w") as f:
            f.write(SOURCE_KUBECONFIG.format(ca_data=ca_data, server=server or self.idp.url,
                                             namespace=namespace or self.namespace))

    def client_env(self, **extra):
        # Only what a person's shell has: the file says everything else.
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.env.home,
             "KUBECONFIG": self.kubeconfig_env}
        # A sanitizer build's aksspark-tokenctl runs under the suite's sanitizer options.
        e.update({k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")})
        e.update(extra)
        return e

    def view(self):
        """The output as kubectl reads it (JSON)."""
        p = subprocess.run([KUBECTL, "config", "view", "--raw", "-o", "json"], capture_output=True, text=True,
                           timeout=60, env=self.client_env())
        if p.returncode != 0:
            raise AssertionError("kubectl config view: %s" % p.stderr)
        return json.loads(p.stdout)

    def assert_no_token_in_output(self):
        text = harness.read(self.output)
        for secret in self.env.secrets():
            if secret in text:
                raise AssertionError("the kubeconfig output holds a secret the identity provider issued")

    def api_requests(self, namespace):
        return [r for r in self.idp.requests("api") if r["path"] == "/api/v1/namespaces/%s/pods" % namespace]


class KubeconfigOutputTest(unittest.TestCase):
    def test_the_readme_setup_is_consistent(self):
        # The README's setup, the client-mode example it points at and the example config
        # agree: the driver reads the kubeconfig output through KUBECONFIG, names the profile's
        # context, and has no token key that would win over the kubeconfig.
        keys, kubeconfig = readme_setup()
        self.assertEqual(kubeconfig, keys["kubeconfig_output"])
        props = {}
        for line in harness.read(os.path.join(harness.SOURCE, "conf", "spark-client.properties.example")).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                k, v = re.split(r"[\s=:]+", line.strip(), 1)
                props[k] = v
        self.assertEqual(props["spark.submit.deployMode"], "client")
        self.assertEqual(props["spark.kubernetes.context"], "default")
        self.assertFalse([k for k in props if "oauthToken" in k], props)
        example = harness.read(os.path.join(harness.SOURCE, "conf", "config.ini"))
        self.assertIn("\nkubeconfig_output = %s\n" % keys["kubeconfig_output"], example)

    def test_the_file_and_its_life(self):
        with Env() as env:
            w = KubeconfigOutputWorld(env, lifetime=600)
            d = env.start_daemon()

            # Written at start, before any sign-in: it holds no token, only how to ask for one.
            wait_until(lambda: os.path.exists(w.output), 10, "the kubeconfig output")
            self.assertEqual(stat.S_IMODE(os.stat(w.output).st_mode), 0o600)
            # The file is in place when the writer thread renames it; status learns the result
            # from the loop a moment later.
            def written():
                out = [o for o in d.status()["outputs"] if o["kind"] == "kubeconfig_output"]
                return out if out and all(o["ok"] is not None for o in out) else None
            out = wait_until(written, 10, "the kubeconfig output's write result")
            self.assertEqual([(o["path"], o["ok"]) for o in out], [(w.output, True)])

            view = w.view()
            self.assertEqual(view["current-context"], "default")
            self.assertEqual([c["name"] for c in view["contexts"]], ["default"])
            self.assertEqual(view["contexts"][0]["context"],
                             {"cluster": "default", "user": "default", "namespace": "spark-alice"})
            cluster = view["clusters"][0]
            self.assertEqual(cluster["name"], "default")
            self.assertEqual(cluster["cluster"]["server"], w.idp.url)
            with open(w.idp.ca_file, "rb") as f:
                self.assertEqual(base64.b64decode(cluster["cluster"]["certificate-authority-data"]), f.read())
            self.assertEqual([u["name"] for u in view["users"]], ["default"])
            exe = view["users"][0]["user"]["exec"]
            self.assertEqual(exe["apiVersion"], V1BETA1)
            self.assertEqual(exe["command"], harness.TOKENCTL)
            self.assertEqual(exe["args"], ["--socket", d.socket_path, "--profile", "default", "exec-credential",
                                           "--api-version", V1BETA1])
            self.assertEqual(exe["interactiveMode"], "Never")
            self.assertFalse(exe["provideClusterInfo"])
            self.assertNotIn("kubelogin", harness.read(w.output))

            # Before the sign-in kubectl is told what to do.
            p = subprocess.run([KUBECTL, "get", "pods", "-o", "json"], capture_output=True, text=True, timeout=60,
                               env=w.client_env())
            env.client_stderr.append(p.stderr)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("login", p.stderr)

            d.sign_in(w.idp)
            w.assert_no_token_in_output()

            # The plugin as fabric8 runs it: the command and arguments of the file, no
            # KUBERNETES_EXEC_INFO, stderr merged into what it parses as JSON.
            p = subprocess.run([exe["command"]] + exe["args"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": env.home})
            self.assertEqual(p.returncode, 0, p.stdout)
            cred = json.loads(p.stdout)
            self.assertEqual(cred["apiVersion"], exe["apiVersion"])
            self.assertTrue(w.idp.token_is_valid(cred["status"]["token"]))

            # kubectl uses it as it is: the namespace of the source's context, the CA data.
            p = subprocess.run([KUBECTL, "get", "pods", "-o", "json"], capture_output=True, text=True, timeout=60,
                               env=w.client_env())
            env.client_stderr.append(p.stderr)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["items"], [])
            last = w.api_requests("spark-alice")[-1]
            self.assertEqual((last["status"], last["user"]), (200, "alice@contoso.com"))

            # A refresh changes the token, not the file: it is not rewritten.
            before = os.stat(w.output)
            self.assertTrue(d.request({"op": "refresh"}, timeout=30)["ok"])
            after = os.stat(w.output)
            self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))
            w.assert_no_token_in_output()

            # A changed source is followed at the next refresh.
            w.write_source(namespace="spark-team")
            self.assertTrue(d.request({"op": "refresh"}, timeout=30)["ok"])
            self.assertEqual(w.view()["contexts"][0]["context"]["namespace"], "spark-team")

            # A reload to v1 rewrites it with the new version, in the entry and its arguments.
            keys = dict(w.keys)
            del keys["kubeconfig_exec_api_version"]
            env.write_config({"default": keys})
            self.assertTrue(d.request({"op": "reload"})["ok"])
            # A reload's writes go to the writer thread; its answer does not wait for them.
            exe = wait_until(lambda: (lambda e: e if e["apiVersion"] == V1 else None)(
                w.view()["users"][0]["user"]["exec"]), 10, "the output rewritten for v1")
            self.assertEqual((exe["apiVersion"], exe["args"][-1]), (V1, V1))
            p = subprocess.run([KUBECTL, "get", "pods", "-o", "json"], capture_output=True, text=True, timeout=60,
                               env=w.client_env())
            env.client_stderr.append(p.stderr)
            self.assertEqual(p.returncode, 0, p.stderr)

            # A source that gives no cluster: at the next write (a refresh) the output fails (the
            # old file stays), status says why and check fails; fixed, it recovers.
            with open(w.source, "w") as f:
                f.write("apiVersion: v1\nkind: Config\ncurrent-context: gone\n")
            d.request({"op": "refresh"}, timeout=30)
            p = d.ctl("check")
            self.assertEqual(p.returncode, 1, p.stderr)
            out = [o for o in d.status()["outputs"] if o["kind"] == "kubeconfig_output"][0]
            self.assertFalse(out["ok"])
            self.assertIn("current-context", out["error"])
            self.assertIn("kubeconfig_output", d.ctl("status").stdout)
            self.assertEqual(w.view()["contexts"][0]["context"]["namespace"], "spark-team")
            w.write_source()
            p = d.ctl("check")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(w.view()["contexts"][0]["context"]["namespace"], "spark-alice")
            w.assert_no_token_in_output()
            d.stop()

    def test_long_running_clients(self):
        missing = [what for what, ok in (("kubectl (scripts/install-deps.sh)", os.path.exists(KUBECTL)),
                                         ("python3-kubernetes (scripts/install-deps.sh)", has_python_client()),
                                         ("tests/node/node_modules (npm ci, scripts/install-deps.sh)",
                                          has_node_client())) if not ok]
        if missing:
            # Not a skip: a run without the real clients must not pass as if it had them.
            self.fail("missing: %s" % ", ".join(missing))

        with Env() as env:
            w = KubeconfigOutputWorld(env, lifetime=LIFETIME)
            d = env.start_daemon()
            d.sign_in(w.idp)
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            wait_until(lambda: os.path.exists(token_file), 10, "the token file")
            results = {}

            def kubectl_loop():
                counts = {"ok": 0, "failed": 0, "errors": []}
                deadline = time.monotonic() + SPAN
                while time.monotonic() < deadline:
                    p = subprocess.run([KUBECTL, "get", "--raw", "/api/v1/namespaces/kubectl/pods"],
                                       capture_output=True, text=True, timeout=60, env=w.client_env())
                    env.client_stderr.append(p.stderr)
                    if p.returncode == 0:
                        counts["ok"] += 1
                    else:
                        counts["failed"] += 1
                        counts["errors"] = (counts["errors"] + [p.stderr[:300]])[:5]
                    time.sleep(0.5)
                results["kubectl"] = counts

            def held_token():
                # What fabric8 does with spark.kubernetes.authenticate.oauthTokenFile: read once.
                with open(token_file) as f:
                    token = f.read()
                ctx = ssl.create_default_context(cafile=w.idp.ca_file)
                seen = []
                deadline = time.monotonic() + SPAN
                while time.monotonic() < deadline:
                    req = urllib.request.Request(w.idp.url + "/api/v1/namespaces/held/pods",
                                                 headers={"Authorization": "Bearer " + token})
                    try:
                        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                            seen.append((time.time(), r.status))
                    except urllib.error.HTTPError as e:
                        seen.append((time.time(), e.code))
                    time.sleep(0.5)
                results["held"] = seen

            def run_process(name, args, cwd=None):
                p = subprocess.run(args, capture_output=True, text=True, timeout=SPAN + 120, cwd=cwd,
                                   env=w.client_env())
                env.client_stderr.append(p.stderr)
                try:
                    results[name] = json.loads(p.stdout.strip().splitlines()[-1])
                except (IndexError, ValueError):
                    results[name] = {"crashed": p.returncode, "stderr": p.stderr[-2000:], "stdout": p.stdout[-500:]}

            threads = [
                threading.Thread(target=kubectl_loop),
                threading.Thread(target=held_token),
                threading.Thread(target=run_process, args=(
                    "python", [DEBIAN_PYTHON, PYTHON_CLIENT, w.kubeconfig_env, "python", str(SPAN), "0.25"])),
                threading.Thread(target=run_process, args=(
                    "node", [NODE, "long_client.mjs", w.kubeconfig_env, "node", str(SPAN), "0.25"], NODE_DIR)),
            ]
            started = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join(SPAN + 180)
            self.assertFalse([t for t in threads if t.is_alive()], "a client did not finish")

            report = {}
            for name, namespace in (("kubectl", "kubectl"), ("python", "python"), ("node", "node")):
                client = results.get(name)
                reqs = w.api_requests(namespace)
                statuses = sorted({r["status"] for r in reqs})
                tokens = {r["token_id"] for r in reqs}
                in_leeway = sum(1 for r in reqs if r["status"] == 200 and r["token_exp"] and r["t"] >= r["token_exp"])
                report[name] = dict(client=client, requests=len(reqs), tokens=len(tokens), statuses=statuses,
                                    accepted_in_leeway=in_leeway)
                with self.subTest(client=name):
                    self.assertIsNotNone(client)
                    self.assertNotIn("crashed", client, client)
                    # Every request authorized, by the client's count and the server's.
                    self.assertEqual(client.get("unauthorized", 0), 0, client)
                    self.assertEqual(client.get("other", client.get("failed", 0)), 0, client)
                    self.assertEqual(statuses, [200], report[name])
                    # ...for three lifetimes, through at least three tokens: the client asked again.
                    self.assertGreaterEqual(reqs[-1]["t"] - reqs[0]["t"], 3 * LIFETIME, report[name])
                    self.assertGreaterEqual(len(tokens), 3, report[name])

            # The client that held the token read once: authorized until that token expired,
            # refused ever after.
            held = results["held"]
            held_reqs = w.api_requests("held")
            token_exp = held_reqs[0]["token_exp"]
            report["held"] = dict(requests=len(held), ok=sum(1 for _, s in held if s == 200),
                                  unauthorized=sum(1 for _, s in held if s == 401), token_exp=token_exp - started)
            self.assertEqual(len({r["token_id"] for r in held_reqs}), 1)
            self.assertTrue(all(s == 200 for t, s in held if t < token_exp - 0.5), report["held"])
            self.assertTrue(all(s == 401 for t, s in held if t > token_exp + LEEWAY + 0.5), report["held"])
            self.assertGreater(report["held"]["unauthorized"], 0, report["held"])
            print("long-running clients over %.0f s, %g s tokens: %s" % (SPAN, LIFETIME, json.dumps(report)))

            w.assert_no_token_in_output()
            d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
