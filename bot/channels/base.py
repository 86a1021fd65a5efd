"""What every platform module receives: one rendered message, values not yet escaped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.events import Event
from bot.templates import Rendered


@dataclass(frozen=True, slots=True)
class Message:
    rule: str
    event: Event
    dedup_key: str
    title: Rendered  # plain text
    text: Rendered  # Markdown
    custom: Any = None  # a template's own body for this platform: dicts/lists with Rendered strings


def format_custom(value: Any, escape: Callable[[str], str]) -> Any:
    """Fill a custom body's rendered strings, escaping event values for the platform."""
    if isinstance(value, Rendered):
        return value.format(escape)
    if isinstance(value, dict):
        return {k: format_custom(v, escape) for k, v in value.items()}
    if isinstance(value, list):
        return [format_custom(v, escape) for v in value]
    return value
