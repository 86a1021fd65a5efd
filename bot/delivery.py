"""Delivery: per-channel queues and workers, pacing, dedup, retries with backoff, dead letters.

Each channel has its own FIFO queue and worker thread, so a slow or failing chat never delays the
others. A worker takes the oldest notification of its channel and, in this order:

  1. waits for its pacing limiter and for the notification's retry time;
  2. reserves `CHANNEL:DEDUP_KEY` in the state store — already delivered: done (duplicate);
     being sent by another worker or replica: ask again shortly;
  3. posts it; delivered: confirm the key for the rule's dedup window;
     permanent failure: release the key and dead-letter with the platform's reason;
     transient failure: release the key and retry after an exponential, jittered backoff that
     honours Retry-After, until `delivery.max_retry_time` has passed — then dead-letter.

The head of a queue blocks the notifications behind it while it is retried: the failures that are
retried (rate limits, 5xx, timeouts) affect the whole channel, and chats show messages in the
order they were posted.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.channels import Outcome, Sender
from bot.clock import SYSTEM, Clock
from bot.deadletter import DeadLetterFile
from bot.pipeline import Notification
from bot.ratelimit import SlidingWindowLimiter, Unlimited
from bot.state import Reservation, StateStore

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
BUSY_RECHECK = 1.0  # another worker holds the key: look again after this long
STORE_RETRY_CAP = 10.0  # the state store is down: try again at least this often


class Result(enum.Enum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead-lettered"


Done = Callable[[Notification, Result], None]


@dataclass
class Job:
    notification: Notification
    done: Done | None
    first_seen: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0
    not_before: float = 0.0
    last_reason: str = ""
    posted: bool = False  # the chat has it; only the confirmation in the state store is missing


@dataclass
class ChannelStats:
    delivered: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    unknown_outcomes: int = 0
    store_errors: int = 0


def _context(n: Notification, channel: str) -> dict:
    """Log fields of a notification (bot.logs prints them; JSON logs carry them as keys)."""
    context = {"event_id": n.event.id, "rule": n.rule, "channel": channel, "dedup_key": n.dedup_key}
    if n.event.origin:
        context["topic"], context["partition"], context["offset"] = n.event.origin
    return context


def backoff(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Exponential with jitter (half fixed, half random), never sooner than the platform asked."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


class ChannelWorker:
    def __init__(self, name: str, channel_type: str, sender: Sender, limiter: SlidingWindowLimiter | Unlimited,
                 store: StateStore, dead_letters: DeadLetterFile, clock: Clock, max_retry_time: float,
                 reservation_seconds: float = 30.0, metrics=None):
        self.name = name
        self.channel_type = channel_type
        self.sender = sender
        self.limiter = limiter
        self.store = store
        self.dead_letters = dead_letters
        self.clock = clock
        self.max_retry_time = max_retry_time
        # A reservation covers one attempt; if its holder dies (kill -9) the key is free again after it.
        self.reservation_seconds = reservation_seconds
        self.metrics = metrics  # bot.metrics.Metrics, when running as a service
        self.stats = ChannelStats()
        self.rng = random.Random()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._abort = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"deliver-{name}", daemon=True)
        self._thread.start()
        if metrics is not None:
            metrics.watch_queue(name, self.pending)

    # -- called by other threads

    def submit(self, job: Job) -> None:
        with self._cond:
            self._queue.append(job)
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def wait_idle(self, seconds: float | None) -> bool:
        """Wait until the queue is empty (this clock's seconds); False on timeout."""
        deadline = None if seconds is None else self.clock.now() + seconds
        with self._cond:
            while self._queue or self._busy:
                remaining = None if deadline is None else deadline - self.clock.now()
                if remaining is not None and remaining <= 0:
                    return False
                self.clock.wait(self._cond, remaining if remaining is not None else 1.0)
            return True

    def close(self, abort: bool) -> list[Job]:
        """Stop the worker; with abort, leave queued jobs undone and return them."""
        with self._cond:
            self._closing = True
            self._abort = abort
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self.sender.close()
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        return left

    # -- the worker thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._abort or not self._queue:
                    return
                job = self._queue[0]
                now = self.clock.now()
                start_at = max(job.not_before, self.limiter.next_allowed(now))
                if start_at > now:
                    self.clock.wait(self._cond, start_at - now)
                    continue
                self._busy = True
            try:
                finished = self._attempt(job, now)
            except Exception:  # a bug must not kill the channel's worker: retry the job later
                log.exception("channel %s: unexpected error delivering %s", self.name, job.notification.dedup_key)
                job.not_before = self.clock.now() + backoff(job.attempts + 1, None, self.rng)
                finished = None
            if finished is not None:  # recorded before the job leaves the queue: wait_idle() sees it done
                self._count(finished, job)
                if job.done:
                    job.done(job.notification, finished)
            with self._cond:
                self._busy = False
                if finished is not None:
                    self._queue.popleft()
                self._cond.notify_all()

    def _attempt(self, job: Job, now: float) -> Result | None:
        """One try; returns the final result, or None to try again later."""
        n = job.notification
        key = f"{self.name}:{n.dedup_key}"
        if job.posted:
            return self._confirm(job, key, now)
        try:
            reservation = self.store.reserve(key, job.token, self.reservation_seconds)
        except Exception as exc:  # never post without dedup protection: wait for the store, drop nothing
            self._store_down(job, now, exc)
            return None
        if reservation is Reservation.DUPLICATE:
            log.info("channel %s: duplicate %s suppressed", self.name, n.dedup_key, extra=_context(n, self.name))
            return Result.DUPLICATE
        if reservation is Reservation.BUSY:
            job.not_before = now + BUSY_RECHECK
            return None
        self.limiter.record(now)
        job.attempts += 1
        result = self.sender.send(n.body, key)
        if result.outcome is Outcome.DELIVERED:
            job.posted = True
            return self._confirm(job, key, now)
        try:
            self.store.release(key, job.token)
        except Exception as exc:  # the reservation expires by itself
            log.warning("channel %s: could not release %s (%s)", self.name, key, exc)
        job.last_reason = result.reason
        if result.outcome is Outcome.FAILED:
            self._dead_letter(job, f"{self.channel_type} rejected the message: {result.reason}")
            return Result.DEAD_LETTERED
        if result.unknown:
            self.stats.unknown_outcomes += 1
        delay = backoff(job.attempts, result.retry_after, self.rng)
        elapsed = self.clock.now() - job.first_seen
        if elapsed + delay > self.max_retry_time:
            self._dead_letter(job, f"gave up after {job.attempts} attempt(s) in {elapsed:.0f}s: {result.reason}")
            return Result.DEAD_LETTERED
        self.stats.retries += 1
        if self.metrics is not None:
            self.metrics.notifications.labels(self.name, "retried").inc()
        log.warning("channel %s: %s for %s; attempt %d, retrying in %.1fs%s", self.name, result.reason,
                    n.dedup_key, job.attempts, delay,
                    " (timed out after sending: it may be posted twice)" if result.unknown else "",
                    extra=_context(n, self.name))
        job.not_before = self.clock.now() + delay
        return None

    def _confirm(self, job: Job, key: str, now: float) -> Result | None:
        """Record the delivery. If the store is down, keep trying to record it — never post again."""
        try:
            self.store.confirm(key, job.token, job.notification.window)
        except Exception as exc:
            self._store_down(job, now, exc)
            return None
        return Result.DELIVERED

    def _store_down(self, job: Job, now: float, exc: Exception) -> None:
        self.stats.store_errors += 1
        delay = min(STORE_RETRY_CAP, backoff(self.stats.store_errors, None, self.rng))
        log.warning("channel %s: state store unavailable (%s: %s); %s again in %.1fs — nothing is posted "
                    "without dedup protection", self.name, type(exc).__name__, exc,
                    "recording the delivery" if job.posted else "trying", delay)
        job.not_before = now + delay

    def _dead_letter(self, job: Job, reason: str) -> None:
        n = job.notification
        log.error("channel %s: dead-lettered %s (rule %s, event %s): %s", self.name, n.dedup_key, n.rule,
                  n.event.id, reason, extra=_context(n, self.name))
        self.dead_letters.write(reason, kind="notification", rule=n.rule, channel=self.name,
                                channel_type=self.channel_type, dedup_key=n.dedup_key, attempts=job.attempts,
                                body=n.body, event=n.event.raw)

    def _count(self, result: Result, job: Job) -> None:
        if result is Result.DELIVERED:
            self.stats.delivered += 1
        elif result is Result.DUPLICATE:
            self.stats.duplicates += 1
        else:
            self.stats.dead_lettered += 1
        if self.metrics is not None:
            self.metrics.notifications.labels(self.name, result.value.replace("-", "_")).inc()
            if result is Result.DELIVERED:
                self.metrics.latency.labels(self.name).observe(max(0.0, self.clock.now() - job.first_seen))


class Delivery:
    """All channel workers of a config."""

    def __init__(self, workers: dict[str, ChannelWorker], clock: Clock = SYSTEM):
        self.workers = workers
        self.clock = clock

    @classmethod
    def build(cls, channels: dict, store: StateStore, dead_letters: DeadLetterFile, *, max_retry_time: float,
              clock: Clock = SYSTEM, senders: dict[str, Sender] | None = None, timeouts=None,
              metrics=None) -> Delivery:
        from bot.channels import Timeouts, make_sender, rate_of
        from bot.ratelimit import limiter_for

        timeouts = timeouts or Timeouts()
        reservation = timeouts.connect + timeouts.read + 5.0  # one attempt, with room to spare
        workers = {}
        for name, config in channels.items():
            sender = (senders or {}).get(name) or make_sender(config, clock, timeouts)
            workers[name] = ChannelWorker(name, config.type, sender, limiter_for(rate_of(config)), store,
                                          dead_letters, clock, max_retry_time, reservation, metrics)
        return cls(workers, clock)

    def submit(self, notification: Notification, done: Done | None = None) -> None:
        self.workers[notification.channel].submit(Job(notification, done, self.clock.now()))

    def pending(self) -> int:
        return sum(w.pending() for w in self.workers.values())

    def wait_idle(self, seconds: float | None = None) -> bool:
        deadline = None if seconds is None else self.clock.now() + seconds
        for worker in self.workers.values():
            remaining = None if deadline is None else max(0.0, deadline - self.clock.now())
            if not worker.wait_idle(remaining):
                return False
        return True

    def close(self, *, abort: bool = False) -> list[Job]:
        left: list[Job] = []
        for worker in self.workers.values():
            left += worker.close(abort)
        return left

    def stats(self) -> dict[str, ChannelStats]:
        return {name: w.stats for name, w in self.workers.items()}
