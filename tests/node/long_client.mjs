// A long-running client on the official Kubernetes Node client (@kubernetes/client-node, from
// tests/node/package-lock.json): loads a kubeconfig once, as it is, and lists pods until the
// time is up.
//
// usage: node long_client.mjs KUBECONFIG NAMESPACE SECONDS INTERVAL
// Prints one JSON line: {"ok": N, "unauthorized": N, "other": N, "errors": [first few]}.
import * as k8s from '@kubernetes/client-node';

const [path, namespace, seconds, interval] = process.argv.slice(2);
const kc = new k8s.KubeConfig();
kc.loadFromFile(path);
const api = kc.makeApiClient(k8s.CoreV1Api);
const counts = { ok: 0, unauthorized: 0, other: 0, errors: [] };
const deadline = Date.now() + Number(seconds) * 1000;

while (Date.now() < deadline) {
    try {
        const pods = await api.listNamespacedPod({ namespace });
        counts[pods.items.length === 0 ? 'ok' : 'other'] += 1;
    } catch (e) {
        counts[e.code === 401 ? 'unauthorized' : 'other'] += 1;
        counts.errors.push(String(e.code ?? '') + ' ' + String(e.message ?? e).slice(0, 300));
        counts.errors.splice(5);
    }
    await new Promise((resolve) => setTimeout(resolve, Number(interval) * 1000));
}
console.log(JSON.stringify(counts));
