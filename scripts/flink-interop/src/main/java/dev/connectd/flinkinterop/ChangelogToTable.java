package dev.connectd.flinkinterop;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.MapType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

/**
 * Reads a changelog topic written by connectd's changelog normalizer with Flink's own Debezium
 * reader (SQL Kafka connector, {@code format = debezium-json}) in an in-process mini-cluster, and
 * writes what Flink makes of it, so that scripts/lib/flink_interop_check.py can compare it with
 * MongoDB.
 *
 * <p>Two bounded jobs over the same topic:
 *
 * <ul>
 *   <li>{@code SELECT *}: its changelog (+I, -U, +U, -D) is folded by primary key into the result
 *       table, written to {@code rows.jsonl};
 *   <li>a per-status aggregate (count, sums): Flink maintains it by retracting old rows, so every
 *       update and delete of the topic must carry the right before-image for it to end right;
 *       written to {@code agg.jsonl}.
 * </ul>
 *
 * <p>{@code summary.json} counts the row kinds each job produced and lists changelog anomalies
 * (an insert of a key already present, a retraction of an absent or different row): Flink itself
 * does not check them, so they are checked here.
 *
 * <p>Usage: {@code ChangelogToTable BOOTSTRAP TOPIC SCHEMA_INCLUDE(true|false) GROUP_ID OUT_DIR}
 */
public final class ChangelogToTable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private ChangelogToTable() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println(
                    "usage: ChangelogToTable BOOTSTRAP TOPIC SCHEMA_INCLUDE GROUP_ID OUT_DIR");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        boolean schemaInclude = Boolean.parseBoolean(args[2]);
        String groupId = args[3];
        Path out = Path.of(args[4]);
        Files.createDirectories(out);

        Configuration conf = new Configuration();
        // The mini-cluster's REST endpoint would default to 8081, the dev registry's port.
        conf.set(RestOptions.BIND_PORT, "0");
        // Two shared cores: one slot's worth of parallelism is plenty for a few thousand rows.
        conf.set(CoreOptions.DEFAULT_PARALLELISM, 1);
        TableEnvironment tenv =
                TableEnvironment.create(
                        EnvironmentSettings.newInstance()
                                .inStreamingMode()
                                .withConfiguration(conf)
                                .build());

        // Columns follow the orders that scripts/lib/quickstart_mongo.py writes; replaced
        // documents lack most of them, so all are nullable. `_id` is an int, a string or an
        // ObjectId ({"$oid": ...}); a STRING column takes all three (objects as their JSON
        // text). The metadata columns read the envelope's ts_ms and source block.
        tenv.executeSql(
                "CREATE TABLE orders (\n"
                        + "  `_id` STRING,\n"
                        + "  qty INT,\n"
                        + "  status STRING,\n"
                        + "  note STRING,\n"
                        + "  customer ROW<name STRING, city STRING>,\n"
                        + "  items ARRAY<ROW<sku STRING, price DOUBLE>>,\n"
                        + "  ingested TIMESTAMP_LTZ(3) METADATA FROM 'value.ingestion-timestamp' VIRTUAL,\n"
                        + "  source_db STRING METADATA FROM 'value.source.database' VIRTUAL,\n"
                        + "  source_props MAP<STRING, STRING> METADATA FROM 'value.source.properties' VIRTUAL,\n"
                        + "  PRIMARY KEY (`_id`) NOT ENFORCED\n"
                        + ") WITH (\n"
                        + "  'connector' = 'kafka',\n"
                        + "  'topic' = '" + sqlString(topic) + "',\n"
                        + "  'properties.bootstrap.servers' = '" + sqlString(bootstrap) + "',\n"
                        + "  'properties.group.id' = '" + sqlString(groupId) + "',\n"
                        + "  'properties.isolation.level' = 'read_committed',\n"
                        + "  'scan.startup.mode' = 'earliest-offset',\n"
                        + "  'scan.bounded.mode' = 'latest-offset',\n"
                        + "  'format' = 'debezium-json',\n"
                        + "  'debezium-json.schema-include' = '" + schemaInclude + "',\n"
                        // Unknown fields (ts_us, transaction, ...) are fine; a malformed
                        // envelope must fail the job, not vanish.
                        + "  'debezium-json.ignore-parse-errors' = 'false'\n"
                        + ")");

        Map<String, Object> summary = new TreeMap<>();
        summary.put("topic", topic);
        summary.put("schema_include", schemaInclude);

        long t0 = System.nanoTime();
        Fold rows =
                fold(
                        tenv.executeSql(
                                "SELECT `_id`, qty, status, note, customer, items, ingested,"
                                        + " source_db, source_props['collection'] AS source_collection,"
                                        + " source_props['connector'] AS source_connector"
                                        + " FROM orders"),
                        "_id");
        summary.put("rows_job_ms", (System.nanoTime() - t0) / 1_000_000);
        write(out.resolve("rows.jsonl"), rows.table.values());
        summary.put("rows", rows.summary());

        t0 = System.nanoTime();
        Fold agg =
                fold(
                        tenv.executeSql(
                                "SELECT status, COUNT(*) AS n, SUM(qty) AS qty_sum,"
                                        + " SUM(items[1].price) AS first_price_sum"
                                        + " FROM orders GROUP BY status"),
                        "status");
        summary.put("agg_job_ms", (System.nanoTime() - t0) / 1_000_000);
        write(out.resolve("agg.jsonl"), agg.table.values());
        summary.put("agg", agg.summary());

        Files.writeString(
                out.resolve("summary.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summary),
                StandardCharsets.UTF_8);
        System.err.printf(
                "flink: %s -> %d rows (%s), %d aggregate rows (%s)%n",
                topic, rows.table.size(), rows.kinds, agg.table.size(), agg.kinds);
        // The mini-cluster's non-daemon threads would keep the JVM alive.
        System.exit(0);
    }

    /** The materialized result of one query: its changelog folded by a key column. */
    private static final class Fold {
        final Map<String, ObjectNode> table = new TreeMap<>();
        final Map<String, Integer> kinds = new TreeMap<>();
        final List<String> anomalies = new ArrayList<>();

        Map<String, Object> summary() {
            Map<String, Object> s = new TreeMap<>();
            s.put("size", table.size());
            s.put("kinds", kinds);
            s.put("anomalies", anomalies.subList(0, Math.min(anomalies.size(), 20)));
            s.put("anomaly_count", anomalies.size());
            return s;
        }
    }

    private static Fold fold(TableResult result, String keyColumn) throws Exception {
        ResolvedSchema schema = result.getResolvedSchema();
        List<Column> columns = schema.getColumns();
        int keyPos = schema.getColumnNames().indexOf(keyColumn);
        Fold f = new Fold();
        try (CloseableIterator<Row> it = result.collect()) {
            while (it.hasNext()) {
                Row row = it.next();
                RowKind kind = row.getKind();
                f.kinds.merge(kind.shortString(), 1, Integer::sum);
                ObjectNode obj = NODES.objectNode();
                for (int i = 0; i < columns.size(); i++) {
                    Column c = columns.get(i);
                    obj.set(c.getName(), toJson(row.getField(i), c.getDataType().getLogicalType()));
                }
                Object k = row.getField(keyPos);
                String key = k == null ? "null" : k.toString();
                switch (kind) {
                    case INSERT:
                        if (f.table.containsKey(key)) {
                            f.anomalies.add("+I of a key already present: " + key);
                        }
                        f.table.put(key, obj);
                        break;
                    case UPDATE_AFTER:
                        f.table.put(key, obj);
                        break;
                    case UPDATE_BEFORE:
                    case DELETE:
                        ObjectNode old = f.table.remove(key);
                        if (old == null) {
                            f.anomalies.add(kind.shortString() + " of an absent key: " + key);
                        } else if (!sameImage(old, obj)) {
                            f.anomalies.add(
                                    kind.shortString() + " of " + key + ": retracts " + obj
                                            + " but the table holds " + old);
                        }
                        break;
                    default:
                        throw new IllegalStateException("unknown row kind " + kind);
                }
            }
        }
        return f;
    }

    /**
     * Whether a retraction carries the row it retracts. The ingestion timestamp and the source
     * block belong to the event, not to the document, so they differ between the two.
     */
    private static boolean sameImage(ObjectNode held, ObjectNode retracted) {
        ObjectNode a = held.deepCopy();
        ObjectNode b = retracted.deepCopy();
        for (String meta : List.of("ingested", "source_db", "source_collection", "source_connector")) {
            a.remove(meta);
            b.remove(meta);
        }
        return a.equals(b);
    }

    private static com.fasterxml.jackson.databind.JsonNode toJson(Object v, LogicalType type) {
        if (v == null) {
            return NODES.nullNode();
        }
        if (type instanceof RowType) {
            RowType rt = (RowType) type;
            Row r = (Row) v;
            ObjectNode o = NODES.objectNode();
            for (int i = 0; i < rt.getFieldCount(); i++) {
                o.set(rt.getFieldNames().get(i), toJson(r.getField(i), rt.getTypeAt(i)));
            }
            return o;
        }
        if (type instanceof ArrayType) {
            LogicalType et = ((ArrayType) type).getElementType();
            ArrayNode a = NODES.arrayNode();
            for (Object e : (Object[]) v) {
                a.add(toJson(e, et));
            }
            return a;
        }
        if (type instanceof MapType) {
            LogicalType vt = ((MapType) type).getValueType();
            ObjectNode o = NODES.objectNode();
            Map<String, Object> sorted = new TreeMap<>();
            ((Map<?, ?>) v).forEach((k, e) -> sorted.put(String.valueOf(k), e));
            sorted.forEach((k, e) -> o.set(k, toJson(e, vt)));
            return o;
        }
        if (v instanceof Instant) {
            return NODES.numberNode(((Instant) v).toEpochMilli());
        }
        return JSON.valueToTree(v);
    }

    private static void write(Path file, Iterable<ObjectNode> rows) throws IOException {
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (ObjectNode r : rows) {
                w.write(JSON.writeValueAsString(r));
                w.newLine();
            }
        }
    }

    private static String sqlString(String s) {
        return s.replace("'", "''");
    }
}
