"""Worker processes (cstreams.workers), the metrics endpoint and the health probes over the
real broker: `cstreams run --processes 2` splits the partitions and counts exactly as one
process; a SIGKILLed worker is restarted and nothing is lost (at-least-once) or duplicated
(exactly_once_v2); SIGTERM stops everything with a final commit; the scraped figures are
metrics()'; readiness is false while a restore runs. Every test runs on the twin the suite
runs on (the CLI workers inherit CSTREAMS_NO_EXTENSIONS / CSTREAMS_REQUIRE_EXTENSIONS)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("confluent_kafka")
pytest.importorskip("prometheus_client")

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from helpers import (  # noqa: E402
    FAST_GROUP,
    WORD,
    app_config,
    committed,
    consume_all,
    env_for_subprocess,
    int64,
    latest_counts,
    produce,
    sample_lines,
    wait_for,
    word_counts,
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams.devbroker import free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(300)]


# --- helpers ------------------------------------------------------------------------------
def get(port, path, timeout=5.0):
    """(status, body bytes) of GET http://127.0.0.1:port/path (503 is an answer too)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(port):
    """{(sample name, frozenset(labels)): value} from /metrics."""
    status, body = get(port, "/metrics")
    assert status == 200
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def by_worker(samples, name):
    """{worker label: value} of one per-worker family."""
    return {dict(labels)["worker"]: v for (n, labels), v in samples.items()
            if n == name and len(labels) == 2}


def end_offsets(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})
    try:
        ends = {}
        for p in range(partitions):
            _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = hi
        return ends
    finally:
        c.close()


def count_in(bootstrap, topic):
    """Records per partition, read to EOF (the test broker under-reports watermarks)."""
    recs = consume_all(bootstrap, topic, timeout=30, idle=2.0)
    out = {}
    for p, o, *_ in recs:
        out[p] = max(out.get(p, 0), o + 1)
    return out


def start_cli(tmp_path, broker, module, app_id, *extra, commit_ms=300):
    port = free_port()
    args = [sys.executable, "-m", "cstreams", "run", f"{module}:topology",
            "--application-id", app_id, "--bootstrap-servers", broker.bootstrap_servers,
            "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", str(commit_ms),
            "--progress-interval-ms", "1000", "--metrics-port", str(port),
            "--metrics-host", "127.0.0.1", *extra]
    for k, v in FAST_GROUP.items():
        args += ["--config", f"{k}={v}"]
    log_path = tmp_path / f"supervisor-{time.monotonic_ns()}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(args, cwd=tmp_path, env=env_for_subprocess(), stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    return proc, port, log_path


def wait_ready(port, proc, log_path, timeout=90):
    def ready():
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            return get(port, "/health/ready", timeout=2)[0] == 200
        except OSError:
            return False
    wait_for(ready, timeout=timeout, what="the supervisor's readiness")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def wordcount_module(tmp_path, src, out, rep):
    (tmp_path / "wctopo.py").write_text(
        "from examples.wordcount import build_topology\n"
        f"topology = build_topology({src!r}, {out!r}, {rep!r})\n")
    return "wctopo"


def lines_records(lines, start=0):
    return [(f"l{start + i}".encode(), line.encode()) for i, line in enumerate(lines)]


def per_word_updates(recs):
    per = {}
    for _p, _o, k, v, _h in recs:
        per.setdefault(k.decode(), []).append(int64(v))
    return per


# --- two workers, exact counts, one endpoint, SIGTERM with a final commit -------------------
def test_two_workers_split_partitions_count_exactly_and_stop_with_a_final_commit(
        broker, topic_factory, tmp_path):
    bs = broker.bootstrap_servers
    src, rep, out = topic_factory("words", 4), topic_factory("rep", 4), topic_factory("wc", 4)
    module = wordcount_module(tmp_path, src, out, rep)
    lines = sample_lines(600, seed=11)
    truth = word_counts(lines)
    n_words = sum(len(WORD.findall(line)) for line in lines)
    app_id = f"workers-{src}"
    # No interval commit during the test: the offsets found committed after SIGTERM are the
    # ones of the revocations and of the final commit.
    proc, port, log_path = start_cli(tmp_path, broker, module, app_id, "--processes", "2",
                                     commit_ms=600_000)
    try:
        wait_ready(port, proc, log_path)
        produce(bs, src, lines_records(lines))
        recs = consume_all(bs, out, timeout=120,
                           until=lambda r: latest_counts(r) == truth)
        # Exactly one process's result: every update of every word once, in order.
        per_word = per_word_updates(recs)
        assert set(per_word) == set(truth)
        for w, counts in per_word.items():
            assert counts == list(range(1, truth[w] + 1)), w

        # One endpoint for both workers; its figures are the workers' metrics().
        def scraped_in():
            return sum(by_worker(scrape(port), "cstreams_records_in_total").values())
        wait_for(lambda: scraped_in() == len(lines) + n_words, timeout=30,
                 what="scraped records_in of both workers")
        s = scrape(port)
        records_in = by_worker(s, "cstreams_records_in_total")
        assert set(records_in) == {"0", "1"}
        assert all(v > 0 for v in records_in.values()), records_in   # the partitions split
        assert sum(by_worker(s, "cstreams_records_out_total").values()) == 2 * n_words
        pids = by_worker(s, "cstreams_pid")
        assert len(set(pids.values())) == 2 and proc.pid not in pids.values()
        tasks = {dict(lb)["task"]: dict(lb)["worker"] for (n, lb), v in s.items()
                 if n == "cstreams_task_running" and v == 1}
        assert sorted(tasks) == sorted(f"{sub}_{p}" for sub in (0, 1) for p in range(4))
        assert set(tasks.values()) == {"0", "1"}
        status, body = get(port, "/health/live")
        assert status == 200 and json.loads(body)["live"] is True

        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert text.count(f"{app_id}: stopped") == 2, text[-3000:]
    assert "all 2 workers stopped" in text
    for topic in (src, rep):
        ends = count_in(bs, topic)
        assert committed(bs, app_id, topic, 4) == {p: ends.get(p, -1001) for p in range(4)}, \
            topic
    # Each worker kept its own state directory; the supervisor only its base instance id.
    state = tmp_path / "state"
    assert sorted(os.listdir(state)) == sorted(["worker-0", "worker-1", app_id])
    assert os.listdir(state / app_id) == ["instance.id"]
    for i in (0, 1):
        assert os.listdir(state / f"worker-{i}" / app_id)   # its task directories


# --- SIGKILL of a worker ----------------------------------------------------------------------
def _kill_worker_and_wait_restart(port, index):
    s = scrape(port)
    pid = int(by_worker(s, "cstreams_pid")[str(index)])
    os.kill(pid, signal.SIGKILL)

    def restarted():
        s = scrape(port)
        new = by_worker(s, "cstreams_pid").get(str(index))
        return (new is not None and int(new) != pid
                and by_worker(s, "cstreams_worker_restarts_total").get(str(index)) == 1)
    wait_for(restarted, timeout=60, what=f"worker {index} restarted")
    return pid


def test_sigkilled_worker_is_restarted_and_nothing_is_lost_at_least_once(
        broker, topic_factory, tmp_path):
    bs = broker.bootstrap_servers
    src, rep, out = topic_factory("words", 4), topic_factory("rep", 4), topic_factory("wc", 4)
    module = wordcount_module(tmp_path, src, out, rep)
    lines = sample_lines(900, seed=5)
    truth = word_counts(lines)
    proc, port, log_path = start_cli(tmp_path, broker, module, f"kill-{src}",
                                     "--processes", "2")
    feeder = None
    try:
        wait_ready(port, proc, log_path)
        produce(bs, src, lines_records(lines[:150]))
        consume_all(bs, out, until=lambda r: len(r) >= 100, timeout=60)

        def feed():
            for i in range(150, len(lines), 30):
                produce(bs, src, lines_records(lines[i:i + 30], start=i))
                time.sleep(0.1)
        feeder = threading.Thread(target=feed)
        feeder.start()
        time.sleep(0.5)
        _kill_worker_and_wait_restart(port, 0)
        feeder.join()
        recs = consume_all(bs, out, timeout=120, until=lambda r: all(
            latest_counts(r).get(w, 0) >= c for w, c in truth.items()))
        got = latest_counts(recs)
        # At-least-once: every input counted; a count may run over after the crash.
        assert all(got.get(w, 0) >= c for w, c in truth.items()), (got, truth)
        for w, counts in per_word_updates(recs).items():
            assert set(range(1, truth[w] + 1)) <= set(counts), w
        wait_ready(port, proc, log_path)
        assert stop(proc) == 0
    finally:
        if feeder is not None:
            feeder.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "worker 0 exited (code -9); restarting it" in log_path.read_text()


def read_committed_output(bs, topic, until, timeout=120):
    c = Consumer({"bootstrap.servers": bs, "group.id": f"rc-{time.monotonic_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed", **FAST_GROUP})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(out):
            for m in c.consume(1000, 0.2):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                out.append((m.partition(), m.offset(), m.key(), m.value(), m.headers()))
    finally:
        c.close()
    return out


def test_sigkilled_worker_keeps_its_transactional_id_and_duplicates_nothing_eos(
        broker, topic_factory, tmp_path):
    """exactly_once_v2: the restarted worker fences its zombie with the same
    transactional.id and goes on from the committed transaction: no count is emitted twice.
    The worker is killed with no transaction open (the test broker does not hide aborted
    transactions from read_committed readers, TESTING.md)."""
    bs = broker.bootstrap_servers
    src, rep, out = topic_factory("words", 4), topic_factory("rep", 4), topic_factory("wc", 4)
    module = wordcount_module(tmp_path, src, out, rep)
    lines = sample_lines(400, seed=9)
    first, second = lines[:200], lines[200:]
    app_id = f"eos-{src}"
    proc, port, log_path = start_cli(tmp_path, broker, module, app_id, "--processes", "2",
                                     "--processing-guarantee", "exactly_once_v2",
                                     commit_ms=100)
    try:
        wait_ready(port, proc, log_path)
        produce(bs, src, lines_records(first))
        read_committed_output(bs, out, lambda r: latest_counts(r) == word_counts(first))
        ends = {t: count_in(bs, t) for t in (src, rep)}
        wait_for(lambda: all(committed(bs, app_id, t, 4) == {
            p: ends[t].get(p, -1001) for p in range(4)} for t in (src, rep)),
            timeout=30, what="every input offset committed")
        # The worker that produced last has committed; with no input it opens no transaction.
        _kill_worker_and_wait_restart(port, 0)
        wait_ready(port, proc, log_path)
        produce(bs, src, lines_records(second, start=200))
        truth = word_counts(lines)
        recs = read_committed_output(bs, out, lambda r: latest_counts(r) == truth)
        for w, counts in per_word_updates(recs).items():
            assert counts == list(range(1, truth[w] + 1)), w
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    ids = [line.split("transactional.id ")[1].split(")")[0] for line in text.splitlines()
           if "transactional producer ready" in line]
    assert len(ids) == 3 and len(set(ids)) == 2, ids      # w0 twice (restart), w1 once
    w0 = [i for i in ids if i.endswith("-w0'")]
    assert len(w0) == 2 and w0[0].startswith(f"'{app_id}-")


# --- one process: scrape == metrics(), readiness during a restore ---------------------------
def counting_topology(src, out):
    S, I64 = cs.serde.STRING, cs.serde.INT64
    t = cs.Topology()
    t.add_source("in", topics=[src], key_serde=S, value_serde=S)
    t.add_store(cs.stores.rocksdb("counts", key_serde=S, value_serde=I64))
    t.add_processor("count", cs.processors.count("counts"), parents=["in"], stores=["counts"])
    t.add_sink("out", topic=out, parents=["count"], key_serde=S, value_serde=I64)
    return t


def fill_changelog(bs, topic, records, chunk):
    """Many small producer batches: restoring them takes many fetches."""
    p = Producer({"bootstrap.servers": bs, "linger.ms": 0, "batch.num.messages": chunk})
    for start in range(0, records, chunk):
        for i in range(start, min(start + chunk, records)):
            p.produce(topic, (1).to_bytes(8, "big"), f"old-{i}".encode(), partition=0)
        assert p.flush(30) == 0


def test_readiness_flips_during_restore_and_scrape_equals_metrics(
        broker, topic_factory, tmp_path):
    bs = broker.bootstrap_servers
    src, out = topic_factory("in", 1), topic_factory("out", 1)
    app_id = f"health-{src}"
    changelog = f"{app_id}-counts-changelog"
    broker.create_topics([(changelog, 1, {"cleanup.policy": "compact"})])
    fill_changelog(bs, changelog, 20_000, 500)
    keys = [f"k{i % 50}" for i in range(1000)]
    produce(bs, src, [(k.encode(), b"x") for k in keys])

    app = cs.App(counting_topology(src, out), application_id=app_id, bootstrap_servers=bs,
                 state_dir=str(tmp_path), commit_interval_ms=600_000, config=app_config(),
                 metrics_port=0, metrics_host="127.0.0.1")
    seen = []          # (status, state) of /health/ready, in order
    restoring_scraped = []
    stop_polling = threading.Event()

    def poll_ready():
        while not stop_polling.is_set():
            if app.metrics_address is not None:
                port = app.metrics_address[1]
                try:
                    status, body = get(port, "/health/ready", timeout=2)
                    state = json.loads(body)["state"]
                    if not seen or seen[-1] != (status, state):
                        seen.append((status, state))
                    if state == "restoring" and not restoring_scraped:
                        restoring_scraped.append({dict(lb)["task"]: v for (n, lb), v
                                                  in scrape(port).items()
                                                  if n == "cstreams_task_restored_records"})
                except OSError:
                    pass
            time.sleep(0.01)

    poller = threading.Thread(target=poll_ready)
    poller.start()
    try:
        app.start()
        port = app.metrics_address[1]
        wait_for(lambda: app.metrics()["records_in"] == len(keys), timeout=120,
                 what="every input record processed")
        wait_for(lambda: len(latest_counts(consume_all(bs, out, timeout=30, idle=1.0)))
                 == 50, what="the output")
        stop_polling.set()
        poller.join()
        # Not ready while restoring, then ready; the restore was visible in the scrape.
        states = [st for _c, st in seen]
        assert (503, "restoring") in seen, seen
        assert seen[-1] == (200, "running"), seen
        assert states.index("restoring") < states.index("running")
        assert all(code == 503 for code, st in seen if st != "running"), seen
        assert restoring_scraped and "0_0" in restoring_scraped[0], restoring_scraped
        assert app.metrics()["records_restored"] == 20_000

        # The scrape says what metrics() says (idle app: nothing changes between the two).
        time.sleep(1.5)        # a lag sample after the last record
        s = scrape(port)
        m = app.metrics()
        lv = frozenset({("application_id", app_id)})
        for key, value in m.items():
            if key == "uptime_s" or isinstance(value, bool) or not isinstance(
                    value, (int, float)):
                continue
            name = f"cstreams_{key}_total" if (f"cstreams_{key}_total", lv) in s else \
                f"cstreams_{key}"
            assert s[(name, lv)] == pytest.approx(value), key
        assert s[("cstreams_ready", lv)] == 1
        task = m["tasks"]["0_0"]
        tl = frozenset({("application_id", app_id), ("task", "0_0")})
        assert s[("cstreams_task_records_in_total", tl)] == task["records_in"] == len(keys)
        for node, counts in task["nodes"].items():
            nl = tl | {("node", node)}
            assert s[("cstreams_node_records_total", nl)] == counts["records"]
            assert s[("cstreams_node_batches_total", nl)] == counts["batches"]
        [part] = m["partitions"]
        pl = frozenset({("application_id", app_id), ("topic", src), ("partition", "0")})
        assert part["position"] == len(keys)
        assert s[("cstreams_consumer_position", pl)] == part["position"]
        assert s[("cstreams_consumer_lag", pl)] == part["lag"]
        assert s[("cstreams_high_watermark", pl)] == part["high_watermark"]
        assert get(port, "/health/live")[0] == 200
    finally:
        stop_polling.set()
        poller.join()
        app.close()
    assert app.metrics_address is None
