// A long-running fabric8 client: lists pods through the kubeconfig KUBECONFIG names for a span,
// as a Spark driver's executor polling does, and prints what it got as one JSON line. With
// "SERVER CA TOKEN_FILE" after the three arguments it is configured instead as Spark configures
// fabric8 for spark.kubernetes.authenticate.oauthTokenFile: the token read once, no kubeconfig.
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
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
        KubernetesClientBuilder builder = new KubernetesClientBuilder();
        if (args.length == 6) {
            String token = new String(java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(args[5]))).trim();
            Config config = new ConfigBuilder().withMasterUrl(args[3]).withCaCertFile(args[4])
                    .withOauthToken(token).build();
            builder.withConfig(config);
        }
        try (KubernetesClient client = builder.build()) {
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
