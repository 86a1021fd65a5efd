"""`dwbot replay`: events from files through match -> dedup -> render -> deliver -> dead letter."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.deadletter import DeadLetterFile
from bot.delivery import Delivery, Result
from bot.events import InvalidEvent
from bot.inputs import Input, message_of
from bot.pipeline import Notification, Pipeline


@dataclass
class ReplayReport:
    events: int = 0
    invalid: int = 0
    notifications: int = 0
    results: Counter = field(default_factory=Counter)  # (channel, Result) -> count

    def dead_lettered(self) -> int:
        return self.invalid + sum(n for (_, r), n in self.results.items() if r is Result.DEAD_LETTERED)


def replay(inputs: Iterable[Input], pipeline: Pipeline, delivery: Delivery, dead_letters: DeadLetterFile,
           progress: Callable[[ReplayReport, int], None] | None = None) -> ReplayReport:
    report = ReplayReport()
    lock = threading.Lock()

    def done(notification: Notification, result: Result) -> None:
        with lock:
            report.results[(notification.channel, result)] += 1

    for item in inputs:
        report.events += 1
        try:
            if item.error:
                raise InvalidEvent(item.error)
            event = pipeline.decode(item.text) if item.text is not None else pipeline.normalise(item.raw)
        except InvalidEvent as exc:
            report.invalid += 1
            dead_letters.write(f"invalid message: {exc}", kind="invalid-message", input=item.label,
                               message=None if item.error else message_of(item))
            continue
        for notification in pipeline.notifications(event):
            report.notifications += 1
            delivery.submit(notification, done)
        if progress:
            progress(report, delivery.pending())
    while not delivery.wait_idle(5.0):
        if progress:
            progress(report, delivery.pending())
    return report
