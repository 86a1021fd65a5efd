"""Slack: Markdown -> mrkdwn, value escaping against mentions/links, Block Kit body with limits.

Limits (reference chat-platforms §2.3): header 150 chars, section text 3,000 chars, keep the
fallback `text` under ~4,000 and the blocks well under the ~12,000 that triggers msg_blocks_too_long.
"""

from __future__ import annotations

import re

from bot.channels.base import Message, format_custom
from bot.markdown import ZWSP, convert_outside_code, neutralise, truncate_chars

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
BLOCKS_TEXT_LIMIT = 12000
FALLBACK_LIMIT = 3000

_BROADCAST = re.compile(r"@(?=(here|channel|everyone)\b)", re.IGNORECASE)


def escape(value: str) -> str:
    """`&`, `<`, `>` are Slack's control characters: escaping them disarms <!channel>, <@U…> and
    <url|label>; formatting chars are split so a value cannot turn bold, italic, struck or code."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _BROADCAST.sub("@" + ZWSP, value)
    return neutralise(value, "*_~`")


_LINK = re.compile(r"!?\[([^\]\n]*)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-+*][ \t]+", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_BOLD_MARK = "\x01"


def from_markdown(md: str) -> str:
    """The template's Markdown -> Slack mrkdwn (code spans and blocks are kept as they are)."""
    return convert_outside_code(md, _convert)


def _convert(md: str) -> str:
    segments = re.split(r"(`[^`\n]+`)", md)
    return "".join(s if s.startswith("`") and s.endswith("`") and len(s) > 1 else _inline(s) for s in segments)


def _inline(text: str) -> str:
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1) or m.group(2)}>", text)
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    return text.replace(_BOLD_MARK, "*")


def _sections(text: str) -> list[str]:
    """Split at line ends into section-sized pieces; the whole is capped with a marker."""
    text = truncate_chars(text, BLOCKS_TEXT_LIMIT)
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= SECTION_LIMIT:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line) > SECTION_LIMIT:
            pieces.append(line[:SECTION_LIMIT])
            line = line[SECTION_LIMIT:]
        current = line
    if current.strip():
        pieces.append(current)
    return pieces


def build_body(message: Message) -> dict:
    if message.custom is not None:
        body = format_custom(message.custom, escape)
        if isinstance(body.get("text"), str):
            body["text"] = truncate_chars(body["text"], 40000)
        return body
    title = message.title.plain.strip()
    text = message.text.format(escape, from_markdown).strip()
    blocks: list[dict] = []
    if title:
        header = truncate_chars(title.replace("\n", " "), HEADER_LIMIT, "…")
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}})
    for piece in _sections(text):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece, "verbatim": True}})
    fallback = "\n".join(p for p in (f"*{escape(title)}*" if title else "", text) if p)
    return {
        "text": truncate_chars(fallback, FALLBACK_LIMIT) or "(empty message)",
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
