"""Generic JSON webhook: title, Markdown text, rule, dedup key and the normalised event."""

from __future__ import annotations

from bot.channels.base import Message


def escape(value: str) -> str:
    return value  # JSON carries no markup; receivers get the values as they are


def build_body(message: Message) -> dict:
    return {
        "title": message.title.plain,
        "text": message.text.plain,
        "rule": message.rule,
        "dedup_key": message.dedup_key,  # stable idempotency key for receivers
        "event": message.event.to_dict(),
    }
