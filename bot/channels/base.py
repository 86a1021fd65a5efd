"""What every platform module receives: one rendered message, values not yet escaped."""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.events import Event
from bot.templates import Rendered


@dataclass(frozen=True, slots=True)
class Mentions:
    """Who to @-mention: resolved from config (never from event text), so mentions are policy."""

    people: tuple[Any, ...] = ()  # bot.config.Person
    everyone: bool = False

    def __bool__(self) -> bool:
        return bool(self.people) or self.everyone


@dataclass(frozen=True, slots=True)
class Message:
    rule: str
    event: Event
    dedup_key: str
    title: Rendered  # plain text
    text: Rendered  # Markdown
    custom: Any = None  # a template's own body for this platform: dicts/lists with Rendered strings
    mentions: Mentions = Mentions()


def format_custom(value: Any, escape: Callable[[str], str]) -> Any:
    """Fill a custom body's rendered strings, escaping event values for the platform."""
    if isinstance(value, Rendered):
        return value.format(escape)
    if isinstance(value, dict):
        return {k: format_custom(v, escape) for k, v in value.items()}
    if isinstance(value, list):
        return [format_custom(v, escape) for v in value]
    return value


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: try again (not before `retry_after` seconds, if given)
    FAILED = "failed"  # permanent: dead-letter with the platform's reason


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None
    unknown: bool = False  # timed out after sending: the platform may have posted it

    @classmethod
    def ok(cls) -> DeliveryResult:
        return cls(Outcome.DELIVERED)

    @classmethod
    def retry(cls, reason: str, after: float | None = None, *, unknown: bool = False) -> DeliveryResult:
        return cls(Outcome.RETRY, reason, after, unknown)

    @classmethod
    def failed(cls, reason: str) -> DeliveryResult:
        return cls(Outcome.FAILED, reason)


class Sender(Protocol):
    """Posts one body to one destination and says what happened; never raises for platform errors."""

    def send(self, body: dict, idempotency_key: str) -> DeliveryResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 15.0


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds (integer or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
