"""DingTalk custom robot: markdown body, value escaping, 20,000-byte limit.

DingTalk markdown is a small subset (reference chat-platforms §1.6): headings, quote, bold, italic,
links, images, lists. Line breaks need two trailing spaces. A person or everyone is notified only by
an `@…` token in the text (plus the `at` field), so values must never carry a live `@`.
"""

from __future__ import annotations

import json
import re

from bot.channels.base import Message, format_custom
from bot.markdown import ZWSP, convert_outside_code, fit_bytes, neutralise

BODY_LIMIT_BYTES = 20000


def escape(value: str) -> str:
    value = value.replace("<", "&lt;")  # DingTalk renders <font> and friends
    value = value.replace("@", "@" + ZWSP)  # @all, @13800001111, @userId
    value = value.replace("](", "]" + ZWSP + "(")  # [label](https://…) and ![](…)
    value = re.sub(r"(^|\n)([ \t]*)([#>]|[-+*][ \t]|\d+\.[ \t])", lambda m: m.group(1) + m.group(2) + ZWSP + m.group(3),
                   value)  # a value with newlines must not start a heading, quote or list
    return neutralise(value, "*_~`")


def from_markdown(md: str) -> str:
    """Standard Markdown -> DingTalk markdown: single line breaks need two trailing spaces."""
    return convert_outside_code(md, lambda part: re.sub(r"(?<![ \n])[ \t]*\n(?!\n)", "  \n", part))


def body_size(body: dict) -> int:
    return len(json.dumps(body, ensure_ascii=False).encode("utf-8"))


def build_body(message: Message) -> dict:
    if message.custom is not None:
        body = format_custom(message.custom, escape)
        for kind, field in (("markdown", "text"), ("text", "content"), ("actionCard", "text")):
            part = body.get(kind)
            if isinstance(part, dict) and isinstance(part.get(field), str):
                part[field] = _fit(body, part, field)
        return body
    title = message.title.plain.strip().replace("\n", " ") or "dwbot"
    text = message.text.format(escape, from_markdown).strip()
    heading = f"#### {escape(title)}"
    markdown = {"title": title[:256], "text": f"{heading}\n\n{text}" if text else heading}
    body = {"msgtype": "markdown", "markdown": markdown}
    markdown["text"] = _fit(body, markdown, "text")
    return body


def _fit(body: dict, part: dict, field: str) -> str:
    """Truncate part[field] until the whole body fits DingTalk's byte limit."""
    original = part[field]

    def size_with(text: str) -> int:
        part[field] = text
        return body_size(body)

    fitted = fit_bytes(original, size_with, BODY_LIMIT_BYTES)
    part[field] = fitted
    return fitted
