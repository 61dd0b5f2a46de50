// Loads spark.properties files exactly as Spark 3 does (Utils.getPropertiesFromFile: an
// InputStreamReader with UTF-8 into java.util.Properties.load) and prints, per file, one JSON
// line: {"file": ..., "ok": true, "props": {key: value, ...}} or {"file": ..., "ok": false,
// "error": ...}. Values are printed as load returns them; Spark then trims blanks around them
// (trimExceptCRLF), so comparing untrimmed values is the stricter check.
//
// Run: java tests/java/PropsCheck.java FILE... | --list LISTFILE (one path per line)
// All files go through one JVM: start-up costs far more than loading a thousand files.

import java.io.BufferedWriter;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

public class PropsCheck {
    static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        sb.append('"');
    }

    static String check(String file) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"file\": ");
        quote(sb, file);
        Properties p = new Properties();
        try (Reader r = new InputStreamReader(new FileInputStream(file), StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (IOException | IllegalArgumentException e) {
            sb.append(", \"ok\": false, \"error\": ");
            quote(sb, e.toString());
            return sb.append('}').toString();
        }
        Map<String, String> sorted = new TreeMap<>();
        for (String k : p.stringPropertyNames()) {
            sorted.put(k, p.getProperty(k));
        }
        sb.append(", \"ok\": true, \"props\": {");
        boolean first = true;
        for (Map.Entry<String, String> e : sorted.entrySet()) {
            if (!first) {
                sb.append(", ");
            }
            first = false;
            quote(sb, e.getKey());
            sb.append(": ");
            quote(sb, e.getValue());
        }
        return sb.append("}}").toString();
    }

    public static void main(String[] args) throws IOException {
        List<String> files = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--list") && i + 1 < args.length) {
                for (String line : Files.readAllLines(Paths.get(args[++i]), StandardCharsets.UTF_8)) {
                    if (!line.isEmpty()) {
                        files.add(line);
                    }
                }
            } else {
                files.add(args[i]);
            }
        }
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII));
        for (String f : files) {
            out.write(check(f));
            out.write('\n');
        }
        out.flush();
    }
}
