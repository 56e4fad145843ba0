package cstreams.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * W1 in Kafka Streams: JSON values {"user": ..., "amount": n} parsed (Jackson tree, as the
 * Python variants' orjson.loads), count per key in a persistent (RocksDB) key-value store with
 * a changelog, (key, count) produced as STRING / INT64, like bench/e2e/w1_cstreams.py.
 *
 * <pre>
 * java -cp target/classes:target/dependency/* cstreams.bench.W1 --api papi|dsl
 *     --bootstrap HOST:PORT --input T --output T --group APP_ID --state-dir DIR
 *     --records N --warmup W --commit-interval-ms 1000 --guarantee at_least_once|exactly_once_v2
 * </pre>
 *
 * papi: the Processor API with Stores.keyValueStoreBuilder(persistentKeyValueStore) as built
 * (logging on, caching off: its defaults), every update forwarded, as cstreams. dsl:
 * stream().groupByKey().count().toStream().to() with the DSL's defaults, record cache
 * included: output is deduplicated per key between commits.
 */
public final class W1 {
    static final String STORE = "counts";

    /** JSON bytes to a Jackson tree, one per record. */
    public static final class JsonDeserializer implements Deserializer<JsonNode> {
        private final ObjectMapper mapper = new ObjectMapper();

        @Override
        public JsonNode deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            try {
                return mapper.readTree(data);
            } catch (IOException e) {
                throw new IllegalArgumentException("bad JSON value on " + topic, e);
            }
        }
    }

    static final class Count implements Processor<String, JsonNode, String, Long> {
        private ProcessorContext<String, Long> context;
        private KeyValueStore<String, Long> store;

        @Override
        public void init(ProcessorContext<String, Long> context) {
            this.context = context;
            this.store = context.getStateStore(STORE);
        }

        @Override
        public void process(Record<String, JsonNode> record) {
            Long old = store.get(record.key());
            long count = old == null ? 1L : old + 1L;
            store.put(record.key(), count);
            context.forward(record.withValue(count));
        }
    }

    static Topology papi(String input, String output) {
        StoreBuilder<KeyValueStore<String, Long>> store = Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(STORE), Serdes.String(), Serdes.Long());
        Topology t = new Topology();
        t.addSource("in", new StringDeserializer(), new JsonDeserializer(), input);
        t.addProcessor("count", Count::new, "in");
        t.addStateStore(store, "count");
        t.addSink("out", output, new StringSerializer(), new LongSerializer(), "count");
        return t;
    }

    static Topology dsl(String input, String output) {
        Serde<JsonNode> json = Serdes.serdeFrom((topic, v) -> {
            throw new UnsupportedOperationException("W1 never serializes JSON");
        }, new JsonDeserializer());
        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.String(), json))
                .groupByKey(Grouped.with(Serdes.String(), json))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(STORE)
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        return b.build();
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value pairs, got " + argv[i]);
            }
            a.put(argv[i].substring(2), argv[i + 1]);
        }
        String input = need(a, "input");
        String output = need(a, "output");
        Probe.inputTopic = input;
        Probe.records = Long.parseLong(need(a, "records"));
        Probe.warmup = Long.parseLong(a.getOrDefault("warmup", "0"));
        String api = a.getOrDefault("api", "papi");
        Topology topology = switch (api) {
            case "papi" -> papi(input, output);
            case "dsl" -> dsl(input, output);
            default -> throw new IllegalArgumentException("--api papi|dsl, got " + api);
        };

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, need(a, "group"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, need(a, "bootstrap"));
        p.put(StreamsConfig.STATE_DIR_CONFIG, need(a, "state-dir"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
                a.getOrDefault("guarantee", StreamsConfig.AT_LEAST_ONCE));
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, a.getOrDefault("commit-interval-ms", "1000"));
        // The Python variants' group settings (bench/e2e/_common.py: fast joins on Tansu).
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "6000");
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG), "10000");
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.INTERCEPTOR_CLASSES_CONFIG),
                Probe.class.getName());

        KafkaStreams streams = new KafkaStreams(topology, p);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("W1 stream thread failed: " + e);
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            stopped.countDown();
        }));
        streams.start();
        System.out.println("W1STARTED " + api + " " + ProcessHandle.current().pid());
        System.out.flush();
        stopped.await();
        streams.close(Duration.ofSeconds(30));
    }

    private static String need(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + k);
        }
        return v;
    }
}
