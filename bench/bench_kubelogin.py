#!/usr/bin/env python3
"""Side by side with kubelogin (the pinned one of scripts/install-peers-kubelogin.sh), interleaved
in one run against the same local identity provider and its API stand-in (which checks every
bearer token):

- the exec command alone: `aksspark-tokenctl exec-credential` vs `kubelogin get-token` with its
  cache warm (spn mode: kubelogin's persistent MSAL cache under ~/.cache/.IdentityService);
- a kubectl call, `kubectl get --raw /version`, through the kubeconfig output's exec entry vs
  through a kubeconfig whose exec entry is kubelogin's.

    python3 bench/bench_kubelogin.py [--build build] [-n 300] [--blocks 10]

Each ratio is ours / kubelogin's, the median of per-block median ratios; the spread is the lowest
and highest block's ratio. Goals: exec command <= 0.2x, kubectl call <= 0.9x.
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import SERVER_ID, harness  # noqa: E402

KUBELOGIN = os.environ.get("AKSSPARK_KUBELOGIN", "/var/cache/aksspark-tokend-peers/kubelogin/kubelogin")
KUBECTL = "kubectl"
SPN_CLIENT = "8c9d0e1f-2a3b-4c4d-9e5f-7a8b9c0d1e2f"
TENANT = "contoso.onmicrosoft.com"

SOURCE = """apiVersion: v1
kind: Config
clusters:
- cluster: {{certificate-authority-data: {ca}, server: '{server}'}}
  name: aks
contexts:
- context: {{cluster: aks, user: {user}}}
  name: aks
current-context: aks
users:
- name: {user}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {kubelogin}
      args: [get-token, --login, spn, --server-id, {server_id}, --client-id, {client}, --tenant-id, {tenant},
             --authority-host, '{server}/', --disable-instance-discovery]
      env: null
      interactiveMode: IfAvailable
      provideClusterInfo: false
"""


def exec_entry(kubeconfig):
    """The command line of the current context's exec entry, as kubectl reads the file."""
    p = subprocess.run([KUBECTL, "config", "view", "--raw", "--minify", "-o", "json", "--kubeconfig", kubeconfig],
                       capture_output=True, text=True, check=True)
    ex = json.loads(p.stdout)["users"][0]["user"]["exec"]
    return [ex["command"]] + list(ex.get("args") or [])


def one(argv, env, stdin=subprocess.DEVNULL):
    t0 = benchlib.time.perf_counter()
    p = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = benchlib.time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), p.returncode, p.stderr.decode()[-400:]))
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build")
    ap.add_argument("-n", type=int, default=300, help="runs of each command (default 300)")
    ap.add_argument("--blocks", type=int, default=10)
    args = ap.parse_args()
    benchlib.use_build(args.build)
    if not os.access(KUBELOGIN, os.X_OK):
        sys.exit("no kubelogin at %s: run scripts/install-deps.sh" % KUBELOGIN)

    with harness.Env(prefix="aksspark-bench-kubelogin-") as env:
        idp = env.start_idp(lifetime=3600)
        secret = idp.add_client_secret(SPN_CLIENT)
        with open(idp.ca_file, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        source = os.path.join(env.home, ".kube", "config")
        os.makedirs(os.path.dirname(source), mode=0o700, exist_ok=True)
        with open(source, "w") as f:
            f.write(SOURCE.format(ca=ca, server=idp.url, user="clusterUser_rg_aks", kubelogin=KUBELOGIN,
                                  server_id=SERVER_ID, client=SPN_CLIENT, tenant=TENANT))
        output = os.path.join(env.home, ".kube", "aksspark.yaml")
        env.write_config({"default": {"kubeconfig": source, "kubeconfig_output": output}},
                         daemon={"log_level": "warning"})
        d = env.start_daemon()
        d.sign_in(idp)
        harness.wait_until(lambda: os.path.exists(output), 20, "the kubeconfig output")

        # What a person's shell has, plus what points kubelogin at the local provider.
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": env.home}
        ours_env = dict(base, KUBECONFIG=output)
        peer_env = dict(base, KUBECONFIG=source, SSL_CERT_FILE=idp.ca_file,
                        AAD_SERVICE_PRINCIPAL_CLIENT_SECRET=secret)
        exec_ours = exec_entry(output)
        exec_peer = [KUBELOGIN, "get-token", "--login", "spn", "--server-id", SERVER_ID, "--client-id", SPN_CLIENT,
                     "--tenant-id", TENANT, "--authority-host", idp.url + "/",
                     "--disable-instance-discovery"]
        kubectl = [KUBECTL, "get", "--raw", "/version"]
        exec_env = dict(ours_env, KUBERNETES_EXEC_INFO='{"apiVersion":"client.authentication.k8s.io/v1beta1",'
                        '"kind":"ExecCredential","spec":{"interactive":false}}')
        peer_exec_env = dict(peer_env, KUBERNETES_EXEC_INFO=exec_env["KUBERNETES_EXEC_INFO"])

        # Warm: kubelogin's cache gets its token now (one client_credentials grant), and every
        # binary is in the page cache.
        for _ in range(5):
            one(exec_ours, exec_env), one(exec_peer, peer_exec_env)
            one(kubectl, ours_env), one(kubectl, peer_env)
        grants = len([r for r in idp.requests("token") if r["grant_type"] == "client_credentials"])

        cases = {"exec": ((exec_ours, exec_env), (exec_peer, peer_exec_env)),
                 "kubectl": ((kubectl, ours_env), (kubectl, peer_env))}
        times = {k: ([], []) for k in cases}
        for i in range(args.n):
            for k, (ours, peer) in cases.items():
                order = (0, 1) if i % 2 else (1, 0)
                for side in order:
                    argv, e = (ours, peer)[side]
                    times[k][side].append(one(argv, e))
        api = [r for r in idp.requests("api") if r["status"] == 200]
        after = len([r for r in idp.requests("token") if r["grant_type"] == "client_credentials"])
        if after != grants:
            sys.exit("kubelogin's cache was not warm: %d more grants" % (after - grants))

        benchlib.header("side by side with kubelogin (%d runs each, %d blocks)" % (args.n, args.blocks))
        print("kubelogin: %s" % subprocess.run([KUBELOGIN, "--version"], capture_output=True,
                                                text=True).stdout.split("git hash:")[-1].split()[0])
        for k, what, goal in (("exec", "exec command alone", 0.2), ("kubectl", "kubectl get --raw /version", 0.9)):
            ours, peer = times[k]
            size = max(1, len(ours) // args.blocks)
            ratios = [statistics.median(ours[j:j + size]) / statistics.median(peer[j:j + size])
                      for j in range(0, len(ours) - size + 1, size)]
            r = statistics.median(ratios)
            print("%-30s ours p50 %8.3f ms  kubelogin p50 %8.3f ms  ratio %.3fx (blocks %.3f-%.3f)  goal <= %.1fx %s"
                  % (what, statistics.median(ours) * 1000, statistics.median(peer) * 1000, r, min(ratios),
                     max(ratios), goal, "met" if max(ratios) <= goal else ("median met" if r <= goal else "MISSED")))
        print("API stand-in answered %d authorised calls; kubelogin's token grants during the run: 0" % len(api))
        d.stop()


if __name__ == "__main__":
    main()
