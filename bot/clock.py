"""Time, injectable: the bot and the test fakes share one clock, so rate-limit and backoff tests run
fast (a ScaledClock runs N virtual seconds per real second) without changing any logic."""

from __future__ import annotations

import threading
import time


class Clock:
    """Real time."""

    speed = 1.0

    def now(self) -> float:
        """Monotonic seconds, for intervals."""
        return time.monotonic()

    def wall(self) -> float:
        """Epoch seconds, for signatures and persisted expiry times."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait(self, event: threading.Event | threading.Condition, seconds: float | None) -> bool:
        """Wait on an Event (or a held Condition) for at most `seconds` of this clock's time."""
        timeout = None if seconds is None else max(0.0, seconds) / self.speed
        return event.wait(timeout)


class ScaledClock(Clock):
    """`speed` virtual seconds pass per real second (tests: 600 makes a 20/min limit take 0.1 s a message)."""

    def __init__(self, speed: float, start_wall: float | None = None):
        self.speed = speed
        self._real0 = time.monotonic()
        self._wall0 = time.time() if start_wall is None else start_wall

    def now(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def wall(self) -> float:
        return self._wall0 + self.now()


SYSTEM = Clock()
