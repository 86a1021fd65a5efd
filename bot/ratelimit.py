"""Per-channel send pacing.

Platforms enforce "N messages in any window of T seconds" (DingTalk: 20 per minute, then a
10-minute block). A token bucket with a burst of N can exceed that across a window boundary (N at
the end of one bucket period plus refills), so we keep the send times of the last window and allow
a send only while fewer than N fall in it — the same test the platform applies, with a margin.
"""

from __future__ import annotations

from collections import deque

from bot.units import Rate

MARGIN = 1.02  # our clock and the platform's are not the same clock, and requests take time to arrive
LONG_WINDOW_SLACK = 1.0  # extra seconds for minute-scale windows (20 per 61.2 s instead of per 60 s)


class SlidingWindowLimiter:
    def __init__(self, rate: Rate):
        self.limit = max(1, int(rate.count))
        self.window = rate.per_seconds * MARGIN + (LONG_WINDOW_SLACK if rate.per_seconds >= 10 else 0.0)
        self._sent: deque[float] = deque()

    def next_allowed(self, now: float) -> float:
        """Earliest time a send is allowed (`now` if one is allowed right away)."""
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return now
        return self._sent[0] + self.window

    def record(self, now: float) -> None:
        self._sent.append(now)


class Unlimited:
    def next_allowed(self, now: float) -> float:
        return now

    def record(self, now: float) -> None:
        pass


def limiter_for(rate: Rate | None) -> SlidingWindowLimiter | Unlimited:
    return SlidingWindowLimiter(rate) if rate else Unlimited()
