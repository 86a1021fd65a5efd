"""Generic JSON webhook: title, Markdown text, rule, dedup key and the normalised event."""

from __future__ import annotations

import re

from bot.channels.base import Message

_MARKUP = re.compile(r"([\\`*\[\]()<>#!|~])")


def escape(value: str) -> str:
    """`text` is Markdown for receivers that render it: backslash-escape (CommonMark) what could
    become a link, image, HTML or formatting. `_` inside words stays as it is (ods_orders_di)."""
    value = _MARKUP.sub(r"\\\1", value)
    return re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", value)


def build_body(message: Message) -> dict:
    return {
        "title": message.title.plain,
        "text": message.text.format(escape),
        "rule": message.rule,
        "dedup_key": message.dedup_key,  # stable idempotency key for receivers
        "event": message.event.to_dict(),
    }
