"""Kafka source for `dwbot run`: at-least-once consumption with out-of-order completion.

Events are handled concurrently (each channel delivers on its own), so they finish out of order.
Per partition we track the offsets still in flight and commit only the lowest of them — or, when
none is in flight, the offset after the highest one seen. Everything below a committed offset has
been delivered, suppressed as a duplicate, or dead-lettered, so a crash at any moment loses
nothing; what was in flight is consumed again and the dedup state keeps it from posting twice.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from bot.deadletter import raw_message
from bot.delivery import Delivery, Result
from bot.events import InvalidEvent
from bot.pipeline import Notification, Pipeline

log = logging.getLogger("dwbot.consumer")


class PartitionOffsets:
    """One partition of one assignment. A new assignment gets a new object, so work finishing
    from an earlier assignment of the same partition can't move this one's commit point."""

    def __init__(self, topic: str, partition: int):
        self.topic = topic
        self.partition = partition
        self.next_offset: int | None = None  # after the highest offset seen
        self.committed: int | None = None
        self._in_flight: set[int] = set()
        self._heap: list[int] = []
        self._lock = threading.Lock()

    def seen(self, offset: int) -> None:
        # no lock: only the consumer thread touches next_offset (delivery threads only finish())
        if self.next_offset is None or offset + 1 > self.next_offset:
            self.next_offset = offset + 1

    def start(self, offset: int) -> None:
        with self._lock:
            self._in_flight.add(offset)
            heapq.heappush(self._heap, offset)
            if self.next_offset is None or offset + 1 > self.next_offset:
                self.next_offset = offset + 1

    def finish(self, offset: int) -> None:
        with self._lock:
            self._in_flight.discard(offset)

    def committable(self) -> int | None:
        """The offset to commit: every offset below it is fully handled."""
        with self._lock:
            while self._heap and self._heap[0] not in self._in_flight:
                heapq.heappop(self._heap)
            return self._heap[0] if self._heap else self.next_offset

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)


class Ticket:
    """One event's notifications; the offset is finished when the last of them is."""

    def __init__(self, offsets: PartitionOffsets, offset: int, count: int, on_finish: Callable[[], None]):
        self.offsets = offsets
        self.offset = offset
        self.remaining = count
        self.on_finish = on_finish
        self._lock = threading.Lock()

    def done(self, notification: Notification, result: Result) -> None:
        with self._lock:
            self.remaining -= 1
            last = self.remaining == 0
        if last:
            self.offsets.finish(self.offset)
            self.on_finish()


@dataclass
class RunSettings:
    topics: list[str]
    max_in_flight: int = 1000  # events; above it the partitions are paused
    commit_interval: float = 2.0
    shutdown_timeout: float = 30.0
    revoke_timeout: float = 10.0  # how long a rebalance waits for in-flight work of revoked partitions
    batch_size: int = 500  # messages taken per consume() call


@dataclass
class RunStats:
    events: Counter = field(default_factory=Counter)  # matched / unmatched / invalid
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    paused: bool = False
    assigned: bool = False


class KafkaRunner:
    def __init__(self, consumer: Consumer, pipeline: Pipeline, delivery: Delivery, dead_letters,
                 settings: RunSettings, dead_letter_topic=None, metrics=None):
        self.consumer = consumer
        self.pipeline = pipeline
        self.delivery = delivery
        self.dead_letters = dead_letters
        self.dead_letter_topic = dead_letter_topic
        self.settings = settings
        self.stats = RunStats()
        self.metrics = metrics
        if metrics is not None:
            metrics.in_flight.set_function(self.in_flight)
            metrics.count_events(lambda: dict(self.stats.events))
        self.partitions: dict[tuple[str, int], PartitionOffsets] = {}
        self.stop = threading.Event()
        self.fatal: str | None = None
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._last_commit = 0.0

    # ----------------------------------------------------------------------------- rebalances

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.partitions[(tp.topic, tp.partition)] = PartitionOffsets(tp.topic, tp.partition)
        self.stats.assigned = True
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing")
        if self.stats.paused and partitions:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Stop taking work for these partitions, give in-flight work a moment, commit what is done.
        Work still in flight is consumed again by the next owner; dedup keeps it from posting twice."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        deadline = time.monotonic() + self.settings.revoke_timeout
        while time.monotonic() < deadline and any(
                self.partitions[k].in_flight() for k in keys if k in self.partitions):
            time.sleep(0.05)
        self._commit(keys, asynchronous=False)
        for key in keys:
            self.partitions.pop(key, None)
        log.info("revoked %s", ", ".join(f"{t}[{p}]" for t, p in keys))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:  # someone else owns them already: committing would be wrong
            self.partitions.pop((tp.topic, tp.partition), None)
        log.warning("lost %s (session expired); the new owner consumes them again",
                    ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))

    def on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION or error.fatal():
            self.fatal = f"Kafka: {error.str()}"
            self.stop.set()
        elif error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            log.warning("Kafka connection trouble (%s); librdkafka keeps reconnecting", error.str())
        else:
            log.warning("Kafka: %s", error.str())

    # ------------------------------------------------------------------------------ the loop

    def run(self) -> None:
        self.consumer.subscribe(self.settings.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        try:
            while not self.stop.is_set():
                self._pace()
                # Block for the first message only, then take what is already fetched: consume() with a
                # timeout would hold a lone event back until its batch filled or the timeout ran out.
                first = self.consumer.poll(0.2)
                if first is not None:
                    self._handle(first)
                    for message in self.consumer.consume(num_messages=self.settings.batch_size, timeout=0):
                        self._handle(message)
                    if self.metrics is not None:
                        self.metrics.consumed()
                self._maybe_commit()
        finally:
            self._shutdown()

    def _pace(self) -> None:
        """Backpressure: pause all partitions while too many events are in flight."""
        with self._in_flight_lock:
            in_flight = self._in_flight
        if not self.stats.paused and in_flight >= self.settings.max_in_flight:
            self._set_paused(True)
            log.warning("%d events in flight (a chat is slow or down): pausing consumption", in_flight)
        elif self.stats.paused and in_flight <= self.settings.max_in_flight // 2:
            self._set_paused(False)
            log.info("%d events in flight: resuming consumption", in_flight)

    def _set_paused(self, paused: bool) -> None:
        assignment = self.consumer.assignment()
        if assignment:
            (self.consumer.pause if paused else self.consumer.resume)(assignment)
        self.stats.paused = paused
        if self.metrics is not None:
            self.metrics.paused.set(1 if paused else 0)

    def _handle(self, message) -> None:
        if message.error():
            if message.error().code() != KafkaError._PARTITION_EOF:
                self.on_error(message.error())
            return
        key = (message.topic(), message.partition())
        offsets = self.partitions.get(key)
        if offsets is None:
            return  # revoked meanwhile: its next owner consumes it
        offset = message.offset()
        try:
            event = self.pipeline.decode_if_wanted(message.value() or b"")
        except InvalidEvent as exc:
            self._count("invalid")
            log.warning("invalid message at %s[%d]@%d: %s", message.topic(), message.partition(), offset, exc,
                        extra={"topic": message.topic(), "partition": message.partition(), "offset": offset})
            self.dead_letters.write(f"invalid message: {exc}", mirror=False, kind="invalid-message",
                                    topic=message.topic(), partition=message.partition(), offset=offset,
                                    message=raw_message(message.value() or b""))
            if self.dead_letter_topic is not None:
                self.dead_letter_topic.forward(message, str(exc))
            offsets.seen(offset)
            return
        if event is not None:
            event.origin = (message.topic(), message.partition(), offset)
        notifications = self.pipeline.notifications(event) if event is not None else ()
        if not notifications:
            self._count("unmatched")
            offsets.seen(offset)
            return
        self._count("matched")
        log.debug("event %s at %s[%d]@%d: %d notification(s)", event.id, message.topic(), message.partition(),
                  offset, len(notifications), extra={"event_id": event.id, "topic": message.topic(),
                                                     "partition": message.partition(), "offset": offset})
        offsets.start(offset)
        with self._in_flight_lock:
            self._in_flight += 1
        ticket = Ticket(offsets, offset, len(notifications), self._finished)
        for notification in notifications:
            self.delivery.submit(notification, ticket.done)

    def _count(self, result: str) -> None:
        self.stats.events[result] += 1

    def _finished(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    def in_flight(self) -> int:
        with self._in_flight_lock:
            return self._in_flight

    # ------------------------------------------------------------------------------- commits

    def _maybe_commit(self) -> None:
        now = time.monotonic()
        if now - self._last_commit >= self.settings.commit_interval:
            self._last_commit = now
            self._commit(list(self.partitions), asynchronous=True)

    def _commit(self, keys: list[tuple[str, int]], *, asynchronous: bool) -> None:
        """Commit, per partition, the offset below which every event is fully handled."""
        offsets = []
        for key in keys:
            part = self.partitions.get(key)
            if part is None:
                continue
            position = part.committable()
            if position is not None and position != part.committed:
                offsets.append(TopicPartition(part.topic, part.partition, position))
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            log.warning("commit failed (%s); will commit again", exc.args[0].str())
            return
        for tp in offsets:
            part = self.partitions.get((tp.topic, tp.partition))
            if part is not None:
                part.committed = tp.offset
            self.stats.committed[(tp.topic, tp.partition)] = tp.offset

    def _shutdown(self) -> None:
        """Finish or give back in-flight work within the timeout, commit, close."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self.in_flight() and time.monotonic() < deadline and self.fatal is None:
            time.sleep(0.05)  # no polling: nothing new is taken; librdkafka heartbeats on its own
        left = self.in_flight()
        if left:
            log.warning("shutting down with %d event(s) still in flight: they are not committed and will "
                        "be consumed again", left)
        self._commit(list(self.partitions), asynchronous=False)
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the consumer: %s", exc)

