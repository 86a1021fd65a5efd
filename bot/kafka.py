"""librdkafka settings, log routing and connection checks (reference dataworks-openevent §4).

librdkafka never raises for an unreachable broker or a failed SASL login: it logs `FAIL` lines and
retries forever. We route its log into Python logging (repeats folded), remember the last failure,
and turn "no metadata within the startup timeout" into one clear error naming that failure.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer

log = logging.getLogger("dwbot.kafka")

# Our defaults; the user's `kafka.config` overrides all but enable.auto.commit.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "group.id": "dwbot",
    "client.id": "dwbot",
    "auto.offset.reset": "latest",  # Alibaba's demo; a new group starts at the end of the topic
    "enable.auto.commit": False,  # we commit only what is fully handled
    "enable.auto.offset.store": False,
}
# Only consumer settings: a producer built from the same config must not get them.
_CONSUMER_ONLY = {"group.id", "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store",
                  "session.timeout.ms", "heartbeat.interval.ms", "fetch.wait.max.ms", "max.poll.interval.ms",
                  "partition.assignment.strategy", "fetch.message.max.bytes", "fetch.min.bytes",
                  "max.partition.fetch.bytes", "group.instance.id", "isolation.level", "enable.partition.eof",
                  "fetch.max.bytes", "queued.min.messages", "queued.max.messages.kbytes", "check.crcs",
                  "group.protocol"}


class KafkaStartupError(RuntimeError):
    """Kafka could not be reached or refused us; the message says why, in one line."""


def consumer_config(user: dict[str, Any]) -> dict[str, Any]:
    config = CONSUMER_DEFAULTS | {k: v for k, v in user.items()}
    if config.get("enable.auto.commit") not in (False, "false", "False"):
        log.warning("kafka.config enable.auto.commit is ignored: dwbot commits offsets only after handling events")
    config["enable.auto.commit"] = False
    config["enable.auto.offset.store"] = False
    return config


def producer_config(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k not in _CONSUMER_ONLY} | {"client.id": "dwbot-dead-letters"}


class LibrdkafkaLog(logging.Logger):
    """Receives librdkafka's log lines: folds repeats (one per 30 s per message) and keeps the last
    failure for error messages."""

    FOLD_SECONDS = 30.0

    def __init__(self) -> None:
        super().__init__("librdkafka")
        self.parent = logging.getLogger("dwbot")
        self.last_failure: str | None = None
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        text = (msg % args) if args else str(msg)
        if "FAIL" in text or "fail" in text or level >= logging.ERROR:
            detail = text.split("]: ", 1)[-1]
            # "host:port/bootstrap: Connect to ... failed: Connection refused (after 0ms in state CONNECT)"
            self.last_failure = detail.split(": ", 1)[-1] if "/bootstrap" in detail.split(": ", 1)[0] else detail
        key = text.split("]: ", 1)[-1]
        now = time.monotonic()
        with self._lock:
            if now - self._seen.get(key, -1e9) < self.FOLD_SECONDS:
                return
            self._seen[key] = now
            if len(self._seen) > 1000:
                self._seen.clear()
        logging.getLogger("dwbot.librdkafka").log(level, "%s", text)


def check_connection(client: Consumer | Producer, bootstrap: str, timeout: float, kafka_log: LibrdkafkaLog,
                     topics: list[str]) -> None:
    """Fetch metadata within `timeout` or raise KafkaStartupError with the concrete reason."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = client.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            client.poll(0)  # librdkafka hands its log lines over only while being polled
            if time.monotonic() >= deadline:
                reason = kafka_log.last_failure or exc.args[0].str()
                hint = ""
                lowered = reason.lower()
                if "sasl" in lowered or "authentic" in lowered:
                    hint = " — check sasl.username, sasl.password and sasl.mechanism (Alibaba Cloud: PLAIN on 9093)"
                elif "ssl" in lowered or "certificate" in lowered:
                    hint = " — check ssl.ca.location and ssl.endpoint.identification.algorithm"
                raise KafkaStartupError(f"cannot connect to Kafka at {bootstrap} within {timeout:.0f}s: "
                                        f"{reason}{hint}") from None
    missing = [t for t in topics if t not in metadata.topics]
    if missing:
        log.warning("topic(s) %s not found on %s yet; waiting for them to appear", ", ".join(missing), bootstrap)


class DeadLetterTopic:
    """Dead letters on a Kafka topic: invalid messages with their original key and value plus
    headers saying why and where from; undeliverable notifications as their JSON record."""

    FLUSH_SECONDS = 30.0

    def __init__(self, producer: Producer, topic: str):
        self.producer = producer
        self.topic = topic

    def forward(self, message: Any, reason: str) -> None:
        headers = [("dwbot-reason", reason.encode()), ("dwbot-topic", message.topic().encode()),
                   ("dwbot-partition", str(message.partition()).encode()),
                   ("dwbot-offset", str(message.offset()).encode())]
        self._produce(message.key(), message.value(), headers)

    def record(self, record: dict[str, Any]) -> None:
        key = str(record.get("dedup_key") or "").encode() or None
        self._produce(key, json.dumps(record, ensure_ascii=False).encode(),
                      [("dwbot-reason", str(record.get("reason", "")).encode())])

    def _produce(self, key: bytes | None, value: bytes | None, headers: list) -> None:
        self.producer.produce(self.topic, key=key, value=value, headers=headers)
        if self.producer.flush(self.FLUSH_SECONDS):
            log.error("dead-letter topic %s: a record is not confirmed yet (it is in the dead-letter file)",
                      self.topic)

    def close(self) -> None:
        self.producer.flush(self.FLUSH_SECONDS)
