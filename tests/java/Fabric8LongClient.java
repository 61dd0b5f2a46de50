// A long-running fabric8 client: lists pods through the kubeconfig KUBECONFIG names for a span,
// as a Spark driver's executor polling does, and prints what it got as one JSON line.
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;

public class Fabric8LongClient {
    public static void main(String[] args) throws Exception {
        String namespace = args[0];
        double span = Double.parseDouble(args[1]);
        long intervalMs = (long) (Double.parseDouble(args[2]) * 1000);
        int ok = 0, unauthorized = 0, other = 0;
        StringBuilder errors = new StringBuilder();
        long deadline = System.nanoTime() + (long) (span * 1e9);
        try (KubernetesClient client = new KubernetesClientBuilder().build()) {
            while (System.nanoTime() < deadline) {
                try {
                    client.pods().inNamespace(namespace).list();
                    ok++;
                } catch (KubernetesClientException e) {
                    if (e.getCode() == 401) unauthorized++;
                    else other++;
                    if (errors.length() < 600) errors.append(String.valueOf(e.getMessage()).replace('"', '\'')).append("; ");
                }
                Thread.sleep(intervalMs);
            }
        }
        System.out.println("{\"ok\": " + ok + ", \"unauthorized\": " + unauthorized + ", \"other\": " + other
                + ", \"errors\": \"" + errors.toString().replace('\n', ' ').replace('\\', '/') + "\"}");
    }
}
