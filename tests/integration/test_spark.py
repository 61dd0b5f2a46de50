"""spark-submit itself, in cluster mode, with the spark.properties the daemon keeps.

The real spark-submit of pyspark (3.5 with fabric8 6.7; 4.x with fabric8 7), pinned and installed
by scripts/install-peers-spark.sh, submits `local:///opt/app.py` to a Kubernetes API stand-in
(tests/integration/kube_api.py) that checks the bearer token of every request with the identity
provider: it creates the driver pod, applies the Service and ConfigMap with the pod as their
owner, and watches the driver through Pending, Running and Succeeded. The submission exits 0,
every request carried the daemon's current token; after a refresh a second submission carries
the new one. `aksspark-tokenctl check --min-valid` runs before each, as a scheduled job would.

Then a client-mode PySpark driver (3.5), alive for three token lifetimes while it polls the
executor API, once through KUBECONFIG = the profile's kubeconfig_output (refused requests are
asked again with a new token; the test counts those 401s) and once with oauthTokenFile =
token_file, read once and refused from its expiry on: why the README points such drivers at the
kubeconfig."""

import base64
import glob
import json
import os
import subprocess
import threading
import time
import unittest

import harness
from harness import Env, wait_until
from kube_api import KubeApi
from test_kubeconfig_output import KubeconfigOutputWorld, LEEWAY, SOURCE_KUBECONFIG

PEERS = "/var/cache/aksspark-tokend-peers"
LIFETIME = 20.0
SPAN = 3 * LIFETIME + 5
NAMESPACE = "spark-alice"
KEY = "spark.kubernetes.authenticate.submission.oauthToken"


def spark_home(line):
    found = glob.glob(os.path.join(PEERS, line, "lib", "python3*", "site-packages", "pyspark"))
    return found[0] if found else None


def token_of(props):
    for line in harness.read(props).splitlines():
        if line.startswith(KEY):
            return line[len(KEY):].strip()
    return None


class SparkSubmitClusterTest(unittest.TestCase):
    def submit(self, env, home, props, name):
        e = {"PATH": os.path.dirname(os.path.realpath("/usr/bin/java")) + ":/usr/bin:/bin", "HOME": env.home,
             "SPARK_HOME": home, "JAVA_HOME": os.path.dirname(os.path.dirname(os.path.realpath("/usr/bin/java"))),
             "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_CONF_DIR": env.path("spark-conf")}
        os.makedirs(e["SPARK_CONF_DIR"], exist_ok=True)
        started = time.time()
        p = subprocess.run([os.path.join(home, "bin", "spark-submit"), "--master", "k8s://" + self.api.url,
                            "--deploy-mode", "cluster", "--properties-file", props, "--name", name,
                            "local:///opt/app.py"],
                           capture_output=True, text=True, timeout=300, env=e)
        env.client_stderr.append(p.stderr)
        return p, time.time() - started

    def run_line(self, line):
        home = spark_home(line)
        if not home or not os.path.exists(os.path.join(PEERS, line, ".installed")):
            self.fail("pyspark (%s) missing: run scripts/install-deps.sh" % line)
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            self.api = KubeApi(env.path("kube-api"), idp)
            self.addCleanup(self.api.close)
            props = env.path("spark", "spark.properties")
            os.makedirs(os.path.dirname(props))
            # The file a person keeps (conf/spark.properties.example), for this cluster.
            with open(props, "w") as f:
                f.write("spark.master k8s://%s\n" % self.api.url +
                        "spark.submit.deployMode cluster\n"
                        "spark.kubernetes.namespace %s\n" % NAMESPACE +
                        "spark.kubernetes.authenticate.driver.serviceAccountName spark\n"
                        "spark.kubernetes.container.image myregistry.azurecr.io/spark:3.5.1\n"
                        "spark.kubernetes.submission.waitAppCompletion true\n"
                        "spark.kubernetes.report.interval 1s\n"
                        "spark.driver.memory 512m\n"
                        "spark.kubernetes.authenticate.submission.caCertFile %s\n" % self.api.ca_file)
            env.write_config({"default": {"spark_properties": props}})
            d = env.start_daemon()
            d.sign_in(idp)
            wait_until(lambda: token_of(props), 10, "the token in spark.properties")

            report = []
            previous = None
            for n in (1, 2):
                if previous:
                    # A refresh: the daemon rewrites the line before the token expires.
                    wait_until(lambda: token_of(props) != previous, 2 * LIFETIME, "a refreshed token")
                self.assertEqual(d.ctl("check", "--min-valid", "5s").returncode, 0)
                token = token_of(props)
                token_id = self.api.check_token(token, time.time())[1]
                since = len(self.api.requests())
                p, took = self.submit(env, home, props, "t%d" % n)
                reqs = self.api.requests()[since:]
                with self.subTest(line=line, submission=n):
                    self.assertEqual(p.returncode, 0, p.stderr[-4000:])
                    self.assertTrue(reqs)
                    # Every request carried the token the daemon wrote just before, and none was refused.
                    self.assertEqual({r["token_id"] for r in reqs}, {token_id}, reqs)
                    self.assertEqual({r["status"] for r in reqs} - {200, 201, 101}, set(), reqs)
                    calls = [(r["method"], r["path"].split("/")[-2] if r["method"] == "PATCH" else
                              r["path"].split("/")[-1]) for r in reqs]
                    self.assertIn(("POST", "pods"), calls)
                    self.assertIn(("PATCH", "configmaps"), calls)
                    self.assertTrue(any(r["query"].get("watch") == "true" for r in reqs), reqs)
                    # The driver pod went through its phases and the watch saw it end.
                    self.assertIn("phase: Succeeded", p.stderr)
                    driver = [o for o in self.api.objects("pods") if o["metadata"]["labels"].get("spark-role") ==
                              "driver" and o["metadata"]["labels"].get("spark-app-name", "t%d" % n) == "t%d" % n]
                    self.assertTrue(driver)
                    cms = [o for o in self.api.objects("configmaps")
                           if any(ref.get("kind") == "Pod" for ref in o["metadata"].get("ownerReferences", []))]
                    self.assertTrue(cms, "no ConfigMap owned by the driver pod")
                    # The token reached no object spark-submit created.
                    self.assertNotIn(token, json.dumps(self.api.objects()))
                report.append(dict(submission=n, seconds=round(took, 1), requests=len(reqs),
                                   refused=sum(1 for r in reqs if r["status"] == 401),
                                   calls=sorted(set("%s %s%s" % (r["method"], r["path"].split("/namespaces/")[-1].split("/")[1],
                                                                 " watch" if r["query"].get("watch") else "")
                                                    for r in reqs))))
                previous = token
            print("spark-submit (%s): %s" % (line, json.dumps(report)))
            d.stop()

    def test_spark_3_5(self):
        self.run_line("spark-3.5")

    def test_spark_4(self):
        self.run_line("spark-4")


APP = """import sys, time
from pyspark import SparkContext
sc = SparkContext()
time.sleep(float(sys.argv[1]))
sc.stop()
"""


class SparkClientModeTest(unittest.TestCase):
    """A client-mode driver (pyspark 3.5) that lives three token lifetimes while it polls the
    executor API every 2 s: with KUBECONFIG = the profile's kubeconfig_output it is never
    refused in the end (fabric8 runs the exec plugin again after a 401); with oauthTokenFile =
    token_file (read once) it is refused from the first token's expiry on."""

    def run_driver(self, use_kubeconfig):
        line = "spark-3.5"
        home = spark_home(line)
        if not home or not os.path.exists(os.path.join(PEERS, line, ".installed")):
            self.fail("pyspark (%s) missing: run scripts/install-deps.sh" % line)
        with Env() as env:
            w = KubeconfigOutputWorld(env, lifetime=LIFETIME)
            api = KubeApi(env.path("kube-api"), w.idp, leeway=LEEWAY)
            self.addCleanup(api.close)
            with open(api.ca_file, "rb") as f:
                ca_data = base64.b64encode(f.read()).decode()
            with open(w.source, "w") as f:
                f.write(SOURCE_KUBECONFIG.format(ca_data=ca_data, server=api.url, namespace=NAMESPACE))
            d = env.start_daemon()
            d.sign_in(w.idp)
            token_file = os.path.join(env.home, ".kube", "oauthToken")
            wait_until(lambda: os.path.exists(w.output) and os.path.exists(token_file), 10, "the outputs")
            app = env.path("app.py")
            with open(app, "w") as f:
                f.write(APP)
            java = os.path.realpath("/usr/bin/java")
            e = {"PATH": "/usr/bin:/bin", "HOME": env.home, "SPARK_HOME": home,
                 "JAVA_HOME": os.path.dirname(os.path.dirname(java)), "SPARK_LOCAL_IP": "127.0.0.1",
                 "PYSPARK_PYTHON": os.path.join(PEERS, line, "bin", "python")}
            conf = {"spark.kubernetes.namespace": NAMESPACE, "spark.kubernetes.container.image": "spark:3.5",
                    "spark.executor.instances": "1", "spark.kubernetes.executor.apiPollingInterval": "2s",
                    "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                    "spark.driver.memory": "512m", "spark.ui.enabled": "false"}
            if use_kubeconfig:
                e["KUBECONFIG"] = w.kubeconfig_env
                self.assertEqual(os.path.realpath(w.kubeconfig_env), os.path.realpath(w.output))
            else:
                # The token the daemon keeps, handed to Spark as a file; no kubeconfig to fall back on.
                os.rename(w.source, w.source + ".away")
                conf["spark.kubernetes.authenticate.oauthTokenFile"] = token_file
                conf["spark.kubernetes.authenticate.caCertFile"] = api.ca_file
            args = [os.path.join(home, "bin", "spark-submit"), "--master", "k8s://" + api.url,
                    "--deploy-mode", "client"]
            for k, v in conf.items():
                args += ["--conf", "%s=%s" % (k, v)]
            started = time.time()
            p = subprocess.run(args + [app, str(SPAN)], capture_output=True, text=True, timeout=SPAN + 240, env=e)
            took = time.time() - started
            env.client_stderr.append(p.stderr)
            reqs = api.requests()
            refused = [r for r in reqs if r["status"] == 401]
            polls = [r for r in reqs if r["method"] == "GET" and r["path"].endswith("/pods") and
                     not r["query"].get("watch")]
            report = dict(kubeconfig=use_kubeconfig, seconds=round(took, 1), requests=len(reqs),
                          refused=len(refused), polls=len(polls),
                          tokens=len({r["token_id"] for r in reqs if r["token_id"]}),
                          calls=sorted(set("%s %s%s" % (r["method"], r["path"].split("/namespaces/")[-1].split("/")[1]
                                                        if "/namespaces/" in r["path"] else r["path"],
                                                        " watch" if r["query"].get("watch") else "") for r in reqs)))
            print("spark client mode (%s): %s" % (line, json.dumps(report)))
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            self.assertTrue(any(r["method"] == "POST" and r["path"].endswith("/pods") for r in reqs), reqs)
            self.assertGreaterEqual(polls[-1]["t"] - polls[0]["t"], 3 * LIFETIME - 5, report)
            if use_kubeconfig:
                # Every refused request was asked again with a new token and went through: the
                # last polls succeed, after at least three tokens.
                self.assertEqual(polls[-1]["status"], 200, report)
                for r in refused:
                    self.assertTrue(any(q["t"] > r["t"] and q["path"] == r["path"] and q["status"] == 200
                                        for q in reqs), r)
                self.assertGreaterEqual(report["tokens"], 3, report)
                self.assertNotRegex(p.stderr, r"Unauthorized|KubernetesClientException", "the driver logged a failure")
            else:
                # One token, read once: after it expired every poll is refused.
                self.assertEqual(report["tokens"], 1, report)
                late = [r for r in polls if r["t"] > polls[0]["t"] + LIFETIME + LEEWAY + 2]
                self.assertTrue(late, report)
                self.assertEqual({r["status"] for r in late}, {401}, report)
                self.assertRegex(p.stderr, r"Unauthorized|401")
            w.assert_no_token_in_output()
            d.stop()

    def test_kubeconfig_output_and_oauth_token_file(self):
        # Both drivers at once (each with its own daemon, identity provider and API stand-in):
        # they mostly sleep, and one span of CI time is enough for both.
        failures = {}

        def run(use_kubeconfig):
            try:
                self.run_driver(use_kubeconfig)
            except BaseException as e:   # re-raised below, in the test's thread
                failures[use_kubeconfig] = e

        threads = [threading.Thread(target=run, args=(v,)) for v in (True, False)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SPAN + 300)
        self.assertFalse([t for t in threads if t.is_alive()], "a driver did not finish")
        for use_kubeconfig in (True, False):
            with self.subTest(kubeconfig=use_kubeconfig):
                if use_kubeconfig in failures:
                    raise failures[use_kubeconfig]


if __name__ == "__main__":
    unittest.main(verbosity=2)
