package cstreams.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerInterceptor;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * The steady-state probe of the Kafka Streams worker, as a consumer interceptor on the main
 * consumer (one call per poll, none per record). It prints one line per mark on stdout:
 *
 * <pre>W1PROBE first|warm|consumed HANDED_OUT_BEFORE NANOTIME UTIME_TICKS STIME_TICKS</pre>
 *
 * first: the first poll returning input records; warm: the first poll that starts at or past
 * the warm-up window (the same rule as bench/e2e/_common.py's SteadyStateProbe); consumed: the
 * poll that hands out the N-th input record. CPU is the JVM's process time (all threads) from
 * /proc/self/stat. The last mark (the N-th output acknowledged: the group's committed offsets
 * cover every input record) is taken from outside by bench/e2e/kstreams.py, which reads the
 * JVM's /proc/PID/stat then.
 */
public final class Probe implements ConsumerInterceptor<byte[], byte[]> {
    static volatile String inputTopic;
    static volatile long records;
    static volatile long warmup;

    private long consumed;
    private boolean first;
    private boolean warm;
    private boolean done;

    @Override
    public ConsumerRecords<byte[], byte[]> onConsume(ConsumerRecords<byte[], byte[]> batch) {
        if (done || batch.isEmpty()) {
            return batch;
        }
        int n = 0;
        for (TopicPartition tp : batch.partitions()) {
            if (tp.topic().equals(inputTopic)) {
                n += batch.records(tp).size();
            }
        }
        if (n == 0) {
            return batch;
        }
        if (!first) {
            first = true;
            mark("first", consumed);
        }
        if (!warm && consumed >= warmup) {
            warm = true;
            mark("warm", consumed);
        }
        consumed += n;
        if (consumed >= records) {
            done = true;
            mark("consumed", consumed);
        }
        return batch;
    }

    static void mark(String what, long handedOut) {
        long now = System.nanoTime();
        String[] f = procStat();
        System.out.println("W1PROBE " + what + " " + handedOut + " " + now + " " + f[0] + " " + f[1]);
        System.out.flush();
    }

    /** utime and stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat). */
    static String[] procStat() {
        try {
            String s = Files.readString(Path.of("/proc/self/stat"));
            String[] rest = s.substring(s.lastIndexOf(')') + 2).split(" ");
            return new String[] {rest[11], rest[12]};
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/stat", e);
        }
    }

    @Override
    public void onCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {}

    @Override
    public void close() {}

    @Override
    public void configure(Map<String, ?> configs) {}
}
