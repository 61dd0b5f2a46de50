#!/usr/bin/python3
"""A long-running client on the official Kubernetes Python client (Debian's
python3-kubernetes): loads a kubeconfig once, as it is, and lists pods until the time is up.

usage: python_client.py KUBECONFIG NAMESPACE SECONDS INTERVAL
Prints one JSON line: {"ok": N, "unauthorized": N, "other": N, "errors": [first few]}.
Run it with Debian's /usr/bin/python3: that is where the package is installed."""
import json
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main():
    path, namespace, seconds, interval = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    config.load_kube_config(config_file=path)
    api = client.CoreV1Api()
    counts = {"ok": 0, "unauthorized": 0, "other": 0, "errors": []}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pods = api.list_namespaced_pod(namespace, _request_timeout=10)
            counts["ok" if pods.items == [] else "other"] += 1
        except ApiException as e:
            counts["unauthorized" if e.status == 401 else "other"] += 1
            counts["errors"].append("%s %s" % (e.status, e.reason))
        except Exception as e:  # the exec plugin failed, the connection broke...
            counts["other"] += 1
            counts["errors"].append(repr(e)[:300])
        del counts["errors"][5:]
        time.sleep(interval)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
