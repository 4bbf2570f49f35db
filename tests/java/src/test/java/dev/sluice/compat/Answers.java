package dev.sluice.compat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;

/**
 * The recorded answers of the differential admin test ({@link AdminDiffTest}): one JSON file per
 * scenario and target, {@code DIR/SCENARIO.json}, where DIR is the system property
 * {@code adminAnswers} (scripts/compat-java.sh sets docs/compat-results/admin/TARGET) or
 * target/admin-answers/TARGET. scripts/admin_diff.py compares Kafka's files with Sluice's.
 *
 * <p>The JSON is written here, by hand, because the suite has no JSON library and needs only
 * objects (keys sorted, so a file's text is the same on every run with the same answers),
 * arrays, strings, integers, booleans and null.
 */
final class Answers {
    private Answers() {}

    static Path directory() {
        String configured = System.getProperty("adminAnswers", System.getenv("COMPAT_ADMIN_ANSWERS"));
        return Path.of(configured == null || configured.isBlank() ? "target/admin-answers/" + Compat.target() : configured);
    }

    /** Writes one scenario's answers; the map's keys are sorted on the way out. */
    static void write(String scenario, Map<String, Object> answers) throws IOException {
        Path directory = directory();
        Files.createDirectories(directory);
        StringBuilder out = new StringBuilder();
        json(out, answers, "");
        out.append('\n');
        Files.writeString(directory.resolve(scenario + ".json"), out, StandardCharsets.UTF_8);
    }

    /**
     * The answer of one call, or, when it fails, {"error": the exception's simple class name}:
     * an error is an answer to compare like any other (a broker that refuses what the other
     * answers differs), not a failure of the recording.
     */
    static Object outcome(Callable<Object> call) {
        try {
            return call.call();
        } catch (ExecutionException e) {
            return errorOf(e.getCause() == null ? e : e.getCause());
        } catch (Exception e) {
            return errorOf(e);
        }
    }

    static Map<String, Object> errorOf(Throwable error) {
        return Map.of("error", error.getClass().getSimpleName());
    }

    /** Optional.empty() as JSON null. */
    static Object orNull(Optional<?> value) {
        return value.orElse(null);
    }

    private static void json(StringBuilder out, Object value, String indent) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof Map<?, ?> map) {
            if (map.isEmpty()) {
                out.append("{}");
                return;
            }
            String inner = indent + "  ";
            out.append("{\n");
            boolean first = true;
            for (Map.Entry<String, Object> entry : sortedEntries(map)) {
                out.append(first ? "" : ",\n").append(inner);
                string(out, entry.getKey());
                out.append(": ");
                json(out, entry.getValue(), inner);
                first = false;
            }
            out.append('\n').append(indent).append('}');
        } else if (value instanceof Collection<?> list) {
            if (list.isEmpty()) {
                out.append("[]");
                return;
            }
            String inner = indent + "  ";
            out.append("[\n");
            boolean first = true;
            for (Object item : list) {
                out.append(first ? "" : ",\n").append(inner);
                json(out, item, inner);
                first = false;
            }
            out.append('\n').append(indent).append(']');
        } else if (value instanceof Boolean || value instanceof Integer || value instanceof Long || value instanceof Short) {
            out.append(value);
        } else {
            string(out, value.toString());
        }
    }

    private static Collection<Map.Entry<String, Object>> sortedEntries(Map<?, ?> map) {
        TreeMap<String, Object> sorted = new TreeMap<>();
        map.forEach((key, item) -> sorted.put(String.valueOf(key), item));
        return sorted.entrySet();
    }

    private static void string(StringBuilder out, String text) {
        out.append('"');
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
