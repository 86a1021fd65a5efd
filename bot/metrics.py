"""Prometheus metrics of one `dwbot run` (names follow Alertmanager's habits: `*_total` counters,
`config_last_reload_successful`). One registry per Metrics object, so tests can run several."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from bot import __version__

log = logging.getLogger("dwbot.metrics")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._event_counts: Callable[[], dict[str, int]] = dict
        r.register(_EventsCollector(self))
        self.notifications = Counter("dwbot_notifications", "Notifications by channel and result "
                                     "(delivered, duplicate, retried, dead_lettered)", ["channel", "result"],
                                     registry=r)
        self.latency = Histogram("dwbot_delivery_latency_seconds", "From hand-over to the channel until the "
                                 "chat accepted it", ["channel"], registry=r,
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600))
        self.queue_depth = Gauge("dwbot_channel_queue_depth", "Notifications waiting in a channel's queue "
                                 "(rate limit or retry)", ["channel"], registry=r)
        self.consumer_lag = Gauge("dwbot_consumer_lag", "Messages behind the end of the partition (librdkafka "
                                  "statistics)", ["topic", "partition"], registry=r)
        self.dead_letters = Counter("dwbot_dead_letters", "Records written to the dead-letter destination",
                                    registry=r)
        self.template_fallbacks = Counter("dwbot_template_fallbacks", "Notifications sent with the fallback "
                                          "message because their template failed", registry=r)
        self.rule_errors = Counter("dwbot_rule_evaluation_errors", "`when` expressions that raised",
                                   ["rule"], registry=r)
        self.in_flight = Gauge("dwbot_events_in_flight", "Events being delivered (backpressure above "
                               "kafka.max_in_flight)", registry=r)
        self.paused = Gauge("dwbot_consumption_paused", "1 while consumption is paused by backpressure",
                            registry=r)
        self.last_event = Gauge("dwbot_last_event_timestamp_seconds", "When the last Kafka message was consumed",
                                registry=r)
        self.since_last_event = Gauge("dwbot_seconds_since_last_event", "Seconds since the last Kafka message",
                                      registry=r)
        self._last_event_at: float | None = None
        self.since_last_event.set_function(
            lambda: time.time() - self._last_event_at if self._last_event_at else float("nan"))
        self.info = Gauge("dwbot_build_info", "Version, rule count and config hash of the running config",
                          ["version", "rules", "config_hash"], registry=r)
        self.reload_ok = Gauge("dwbot_config_last_reload_successful", "Whether the last config reload "
                               "succeeded", registry=r)
        self.reload_time = Gauge("dwbot_config_last_reload_success_timestamp_seconds", "When the config was "
                                 "last loaded successfully", registry=r)

    def count_events(self, counts: Callable[[], dict[str, int]]) -> None:
        """Read event counts at scrape time: the consumer keeps plain integers on its hot path."""
        self._event_counts = counts

    def consumed(self) -> None:
        """A batch of messages was consumed (called per batch, not per message)."""
        self._last_event_at = time.time()
        self.last_event.set(self._last_event_at)

    def loaded(self, rules: int, config_hash: str) -> None:
        self.info.clear()
        self.info.labels(__version__, str(rules), config_hash).set(1)
        self.reload_ok.set(1)
        self.reload_time.set(time.time())

    def reload_failed(self) -> None:
        self.reload_ok.set(0)

    def watch_queue(self, channel: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(channel).set_function(depth)

    def librdkafka_stats(self, stats_json: str) -> None:
        """stats_cb: consumer lag per partition (the broker's cached watermarks are the trustworthy ones)."""
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        for topic, info in stats.get("topics", {}).items():
            for partition, p in info.get("partitions", {}).items():
                if partition == "-1" or p.get("consumer_lag", -1) < 0:
                    continue
                self.consumer_lag.labels(topic, partition).set(p["consumer_lag"])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _EventsCollector:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self):
        family = CounterMetricFamily("dwbot_events", "Kafka messages consumed, by result", labels=["result"])
        counts = self.metrics._event_counts()
        for result in ("matched", "unmatched", "invalid"):
            family.add_metric([result], counts.get(result, 0))
        yield family


def config_hash(*texts: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
    return digest.hexdigest()[:12]
