"""spark-submit itself, in cluster mode, with the spark.properties the daemon keeps.

The real spark-submit of pyspark (3.5 with fabric8 6.7; 4.x with fabric8 7), pinned and installed
by scripts/install-peers-spark.sh, submits `local:///opt/app.py` to a Kubernetes API stand-in
(tests/integration/kube_api.py) that checks the bearer token of every request with the identity
provider: it creates the driver pod, applies the Service and ConfigMap with the pod as their
owner, and watches the driver through Pending, Running and Succeeded. The submission exits 0,
every request carried the daemon's current token; after a refresh a second submission carries
the new one. `aksspark-tokenctl check --min-valid` runs before each, as a scheduled job would."""

import glob
import json
import os
import subprocess
import time
import unittest

import harness
from harness import Env, wait_until
from kube_api import KubeApi

PEERS = "/var/cache/aksspark-tokend-peers"
LIFETIME = 20.0
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
            self.assertNotEqual(report[0], None)
            print("spark-submit (%s): %s" % (line, json.dumps(report)))
            d.stop()

    def test_spark_3_5(self):
        self.run_line("spark-3.5")

    def test_spark_4(self):
        self.run_line("spark-4")


if __name__ == "__main__":
    unittest.main(verbosity=2)
