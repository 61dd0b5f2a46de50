"""fabric8's kubernetes-client itself, over the kubeconfig output, for three token lifetimes.

The real client Spark bundles (6.7.2 in Spark 3.5.9, 7.6.1 in Spark 4.3.0) and the newest
(8.0.0), pinned and installed by scripts/install-peers-spark.sh, each run tests/java/
Fabric8LongClient.java with KUBECONFIG = the profile's kubeconfig_output, once with the exec
entry at client.authentication.k8s.io/v1beta1 and once at v1, against the identity provider's
Kubernetes API stand-in, which checks the bearer token on every request. fabric8 may be refused
once when its token expires (it then runs the exec plugin again and retries): the test counts
those 401s and reports them; no request of the client fails in the end. Beside them the same
client configured as Spark configures fabric8 for spark.kubernetes.authenticate.oauthTokenFile
(the token file read once) is refused once that token expired: why the README points
long-running drivers at the kubeconfig."""

import json
import os
import subprocess
import threading
import time
import unittest

import harness
from harness import Env, wait_until
from test_kubeconfig_output import KubeconfigOutputWorld, LIFETIME, SPAN, V1, V1BETA1

PEERS = "/var/cache/aksspark-tokend-peers"
VERSIONS = ("6.7.2", "7.6.1", "8.0.0")
CLIENT = os.path.join(harness.SOURCE, "tests", "java", "Fabric8LongClient.java")
# The client's span counts from its JVM's start; four JVMs starting at once on two busy cores
# take seconds before the first request, so each runs that much longer than three lifetimes.
CLIENT_SPAN = SPAN + 20


def classpath(version):
    d = os.path.join(PEERS, "fabric8-" + version)
    return ":".join(os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".jar"))


class Fabric8Test(unittest.TestCase):
    def run_world(self, exec_api_version):
        missing = [v for v in VERSIONS if not os.path.exists(os.path.join(PEERS, "fabric8-" + v, ".installed"))]
        if missing:
            # Not a skip: a run without the real clients must not pass as if it had them.
            self.fail("fabric8 %s missing: run scripts/install-deps.sh" % ", ".join(missing))
        with Env() as env:
            w = KubeconfigOutputWorld(env, lifetime=LIFETIME)
            w.keys["kubeconfig_exec_api_version"] = exec_api_version
            env.write_config({"default": w.keys})
            d = env.start_daemon()
            d.sign_in(w.idp)
            wait_until(lambda: os.path.exists(w.output), 10, "the kubeconfig output")
            self.assertIn("apiVersion: \"%s\"" % exec_api_version, harness.read(w.output))
            results = {}

            token_file = os.path.join(env.home, ".kube", "oauthToken")
            wait_until(lambda: os.path.exists(token_file), 10, "the token file")

            def run(version, held=False):
                namespace = "fabric8-" + version.replace(".", "-")
                args = ["java", "-Xmx128m", "-cp", classpath(version), CLIENT, namespace, str(CLIENT_SPAN), "0.5"]
                client_env = w.client_env()
                if held:
                    namespace = "held"
                    args[5] = namespace
                    args += [w.idp.url, w.idp.ca_file, token_file]
                    client_env["KUBECONFIG"] = os.path.join(env.home, "no-kubeconfig")
                p = subprocess.run(args, capture_output=True, text=True, timeout=CLIENT_SPAN + 180, env=client_env)
                version = "held" if held else version
                env.client_stderr.append(p.stderr)
                try:
                    results[version] = json.loads(p.stdout.strip().splitlines()[-1])
                except (IndexError, ValueError):
                    results[version] = {"crashed": p.returncode, "stderr": p.stderr[-2000:]}

            threads = [threading.Thread(target=run, args=(v,)) for v in VERSIONS]
            if exec_api_version == V1:
                threads.append(threading.Thread(target=run, args=(VERSIONS[0], True)))
            for t in threads:
                t.start()
            for t in threads:
                t.join(CLIENT_SPAN + 240)
            self.assertFalse([t for t in threads if t.is_alive()], "a client did not finish")

            report = {}
            for version in VERSIONS:
                client = results.get(version)
                reqs = [r for r in w.idp.requests("api")
                        if r["path"] == "/api/v1/namespaces/fabric8-%s/pods" % version.replace(".", "-")]
                tokens = {r["token_id"] for r in reqs if r["token_id"]}
                refused = sum(1 for r in reqs if r["status"] == 401)
                report[version] = dict(client=client, requests=len(reqs), refused_then_retried=refused,
                                       tokens=len(tokens))
                with self.subTest(fabric8=version, exec_api_version=exec_api_version):
                    self.assertIsNotNone(client)
                    self.assertNotIn("crashed", client, client)
                    # Every list the client made succeeded in the end (after any 401 and re-exec).
                    self.assertEqual((client["unauthorized"], client["other"]), (0, 0), client)
                    self.assertGreater(client["ok"], 0, client)
                    self.assertEqual(sorted({r["status"] for r in reqs} - {401}), [200], report[version])
                    self.assertGreaterEqual(reqs[-1]["t"] - reqs[0]["t"], 3 * LIFETIME, report[version])
                    self.assertGreaterEqual(len(tokens), 3, report[version])
            if exec_api_version == V1:
                # The token read once: accepted until it expired, refused from then on.
                held = results.get("held")
                reqs = [r for r in w.idp.requests("api") if r["path"] == "/api/v1/namespaces/held/pods"]
                report["held"] = dict(client=held, requests=len(reqs),
                                      refused=sum(1 for r in reqs if r["status"] == 401))
                self.assertNotIn("crashed", held, held)
                self.assertGreater(held["ok"], 0, held)
                self.assertGreater(held["unauthorized"], 0, held)
                self.assertEqual(len({r["token_id"] for r in reqs}), 1, report["held"])
                exp = reqs[0]["token_exp"]
                self.assertTrue(all(r["status"] == 200 for r in reqs if r["t"] < exp - 0.5), report["held"])
                self.assertTrue(all(r["status"] == 401 for r in reqs if r["t"] > exp + 1.5), report["held"])
            print("fabric8 over %.0f s, %g s tokens, %s: %s" % (CLIENT_SPAN, LIFETIME, exec_api_version, json.dumps(report)))
            w.assert_no_token_in_output()
            d.stop()

    def test_v1beta1(self):
        self.run_world(V1BETA1)

    def test_v1(self):
        self.run_world(V1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
