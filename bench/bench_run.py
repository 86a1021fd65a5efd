"""Throughput and latency of `dwbot run` on a local Kafka-protocol broker.

Run:  .venv/bin/python bench/bench_run.py   (options: --events N, --rules N)

1. Produces N ~900-byte DataWorks events to a 4-partition topic; 1 % match a rule.
2. Baseline: raw confluent-kafka consumption of that topic (assign, consume() batches) + json.loads.
3. dwbot run (in this process) with 500 rules, delivering matches to a fast local webhook (its own
   process): time
   from the group assignment until the committed offsets reach the end of every partition.
4. Latency: matching events produced at 100/s; produce -> webhook arrival percentiles.
Prints both rates and their ratio (same broker, same topic, same run).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bot import runtime
from bot.config import Config, LoadedConfig
from bot.demo import start_broker

SAMPLES = Path(__file__).resolve().parent.parent / "bot" / "samples"
PARTITIONS = 4
QUIET = logging.getLogger("bench.clients")
QUIET.setLevel(logging.CRITICAL)


RECEIVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = open(sys.argv[1], "a", buffering=1)

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        out.write(f"{time.time()} {body['event']['data'].get('benchSentAt') or ''}\n")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """A fast local webhook in a process of its own (as a chat service would be): it appends each
    arrival time and the event's send time to a file."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "arrivals.txt"
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(self.path)], stdout=subprocess.PIPE,
                                     text=True)
        self.url = f"http://127.0.0.1:{self.proc.stdout.readline().strip()}/hook"

    @property
    def arrivals(self) -> list[tuple[float, float | None]]:
        if not self.path.exists():
            return []
        rows = [line.split(" ") for line in self.path.read_text().splitlines() if line]
        return [(float(a), float(b) if b else None) for a, b in rows]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def make_events(count: int) -> list[bytes]:
    """1 % failed instances (they match); the rest the ordinary transitions of instances."""
    failed = json.loads((SAMPLES / "instance-status-failure-cloudevent.json").read_text())
    others = [json.loads((SAMPLES / f"instance-status-{name}-cloudevent.json").read_text())
              for name in ("not-run", "running", "success")]
    out = []
    for i in range(count):
        raw = json.loads(json.dumps(failed if i % 100 == 0 else others[i % 3]))
        raw["id"] = f"bench-{i}"
        raw["data"]["taskId"] = 600000000000 + i
        raw["data"]["nodeId"] = 1000438734 if i % 100 == 0 else 1000512207 + (i % 50)
        raw["data"]["padding"] = "x" * 60  # ~900 bytes, like real instance events
        out.append(json.dumps(raw).encode())
    return out


def make_rules(count: int, *, adversarial: bool) -> str:
    """`count` rules; one matches the failed instances.

    realistic: 60 % watch instance failures (per workspace / node), 40 % other event families.
    adversarial: as many rules as there are statuses also apply to every non-matching event and
    fail only on their payload conditions, so nothing is skipped before full evaluation."""
    from bot import catalog

    codes = [k.code for k in catalog.EVENT_KINDS if k.code != "instance-status-changes"]
    lines = ["rules:",
             "  - {name: failed, match: {event: instance-status-changes, status: FAILURE, data: {nodeId: 1000438734}},"
             " notify: [hook]}"]
    for i in range(count - 4):
        if adversarial or i % 5 >= 3:
            lines.append(f"  - {{name: other-{i}, match: {{event: {codes[i % len(codes)]}, data: {{projectId: {i}}}}}, "
                         "notify: [hook]}")
        else:
            lines.append(f"  - {{name: failed-{i}, match: {{event: instance-status-changes, status: FAILURE, "
                         f"workspace: ['{200000 + i}', ws_{i}], data: {{nodeId: {i}}}}}, notify: [hook]}}")
    for status in ("NOT_RUN", "RUNNING", "SUCCESS"):
        if adversarial:
            lines.append(f"  - {{name: same-family-{status}, match: {{event: instance-status-changes, "
                         f"status: {status}, data: {{nodeId: 1}}}}, notify: [hook]}}")
        else:
            lines.append(f"  - {{name: other-{status}, match: {{event: dag-status-changes, status: {status}}}, "
                         "notify: [hook]}")
    return "\n".join(lines) + "\n"


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000, "logger": QUIET})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % PARTITIONS)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(60)


def raw_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-raw-{time.time()}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100, "logger": QUIET})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen, start = 0, None
    while seen < count:
        for message in consumer.consume(num_messages=500, timeout=1.0):
            if message.error():
                continue
            if start is None:
                start = time.perf_counter()
            json.loads(message.value())
            seen += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return count / elapsed


def bot_rate(bootstrap: str, topic: str, count: int, rules: str, hook_url: str, workdir: Path, group: str):
    (workdir / f"{group}.yaml").write_text(rules)
    config = Config.model_validate({
        "kafka": {"topics": [topic], "config": {"bootstrap.servers": bootstrap, "group.id": group,
                                                "auto.offset.reset": "earliest", "session.timeout.ms": 2000,
                                                "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 100},
                  "commit_interval": 0.1},
        "channels": {"hook": {"type": "webhook", "url": hook_url}},
        "state": f"sqlite:///{workdir}/{group}.db", "dead_letter": {"file": str(workdir / "dead.jsonl")},
        "rules": [str(workdir / f"{group}.yaml")]})
    stop = threading.Event()
    runners: list = []
    thread = threading.Thread(target=runtime.run, args=(LoadedConfig(config, None, workdir),),
                              kwargs={"stop": stop, "on_ready": runners.append, "install_signals": False}, daemon=True)
    thread.start()
    while not runners or not runners[0].stats.assigned:
        time.sleep(0.001)
    start = time.perf_counter()
    runner = runners[0]
    per_partition = count // PARTITIONS
    handled_at = None
    while sum(1 for p in range(PARTITIONS) if runner.stats.committed.get((topic, p)) == per_partition) < PARTITIONS:
        if handled_at is None and sum(runner.stats.events.values()) >= count:
            handled_at = time.perf_counter()  # every event decoded, matched and handed to its channel
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    return count / elapsed, count / ((handled_at or time.perf_counter()) - start), runner, stop, thread


def latency(bootstrap: str, topic: str, receiver: Receiver, seconds: float, rate: float) -> list[float]:
    template = json.loads((SAMPLES / "instance-status-failure-cloudevent.json").read_text())
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "logger": QUIET})
    before = len(receiver.arrivals)
    sent = int(seconds * rate)
    for i in range(sent):
        raw = json.loads(json.dumps(template))
        raw["id"] = f"latency-{i}"
        raw["data"].update(taskId=700000000000 + i, benchSentAt=time.time())
        producer.produce(topic, value=json.dumps(raw).encode(), partition=i % PARTITIONS)
        producer.poll(0)
        time.sleep(1 / rate)
    producer.flush(10)
    deadline = time.monotonic() + 30
    while len(receiver.arrivals) - before < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    return [(arrived - sent_at) * 1000 for arrived, sent_at in receiver.arrivals[before:] if sent_at]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count = args.events - args.events % PARTITIONS
    workdir = Path(tempfile.mkdtemp(prefix="dwbot-bench-"))
    broker, bootstrap = start_broker(workdir)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "logger": QUIET})
        for future in admin.create_topics([NewTopic("bench", num_partitions=PARTITIONS)]).values():
            future.result(10)
        values = make_events(count)
        produce(bootstrap, "bench", values)
        size = statistics.mean(len(v) for v in values)
        print(f"{count} events of {size:.0f} bytes on {PARTITIONS} partitions; {args.rules} rules; 1% match", flush=True)
        # The local broker's fetch rate varies from run to run: interleave the three measurements over
        # several rounds and compare medians.
        receiver = Receiver(workdir)
        rates: dict[str, list[float]] = {"raw": [], "adversarial": [], "realistic": []}
        consumed: dict[str, list[float]] = {"adversarial": [], "realistic": []}
        runner = stop = thread = None
        for round_ in range(args.rounds):
            rates["raw"].append(raw_rate(bootstrap, "bench", count))
            for kind in ("adversarial", "realistic"):
                if stop is not None:
                    stop.set()
                    thread.join(30)
                rate, consume_rate, runner, stop, thread = bot_rate(bootstrap, "bench", count,
                                                      make_rules(args.rules, adversarial=kind == "adversarial"),
                                                      receiver.url, workdir, f"bench-{kind}-{round_}")
                assert runner.stats.events == {"matched": count // 100, "unmatched": count - count // 100}
                rates[kind].append(rate)
                consumed[kind].append(consume_rate)
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), flush=True)
        assert len(receiver.arrivals) == 2 * args.rounds * count // 100, len(receiver.arrivals)
        raw = statistics.median(rates["raw"])
        print(f"raw confluent-kafka consume + json.loads: median {raw:10,.0f} events/s "
              f"(range {min(rates['raw']):,.0f}-{max(rates['raw']):,.0f})")
        for kind in ("adversarial", "realistic"):
            median, handed = statistics.median(rates[kind]), statistics.median(consumed[kind])
            print(f"dwbot run, {kind + ' rules':17}:   consumed+matched median {handed:10,.0f} events/s "
                  f"(ratio {handed / raw:.2f});  end to end (delivered+committed) median {median:10,.0f} "
                  f"events/s (ratio {median / raw:.2f})")
        lat = latency(bootstrap, "bench", receiver, seconds=5, rate=100)
        q = statistics.quantiles(lat, n=100)
        print(f"produce -> delivery latency over {len(lat)} events at 100/s: p50 {q[49]:.1f} ms, "
              f"p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, max {max(lat):.1f} ms")
        stop.set()
        thread.join(30)
        receiver.close()
    finally:
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main()
