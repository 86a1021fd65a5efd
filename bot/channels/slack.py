"""Slack: Markdown -> mrkdwn, value escaping against mentions/links, Block Kit body with limits.

Limits (reference chat-platforms §2.3): header 150 chars, section text 3,000 chars, keep the
fallback `text` under ~4,000 and the blocks well under the ~12,000 that triggers msg_blocks_too_long.
"""

from __future__ import annotations

import re
import urllib.error

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.channels.base import DeliveryResult, Message, Timeouts, format_custom, retry_after_seconds
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


def _mentions(mentions) -> str:
    """`<@U…>` for configured people and `<!channel>` for `mention: [all]` — from config only."""
    if not mentions:
        return ""
    tokens = [f"<@{p.slack_user_id}>" for p in mentions.people if p.slack_user_id]
    if mentions.everyone:
        tokens.append("<!channel>")
    return " ".join(tokens)


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
    mentions = _mentions(message.mentions)
    if mentions:
        text = truncate_chars(text, BLOCKS_TEXT_LIMIT - len(mentions) - 2) + "\n" + mentions
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


# ------------------------------------------------------------------------------------ sending
# reference chat-platforms §2.1, §2.2, §2.5. The SDK's handlers sleep inside the caller and by
# default retry neither 429 nor 5xx; we keep only its connection-error retry and leave 429/5xx to
# the delivery engine, which re-queues with Retry-After instead of blocking a worker.

RETRYABLE_API_ERRORS = {"ratelimited", "rate_limited", "request_timeout", "service_unavailable", "internal_error",
                        "fatal_error"}


def _retry_handlers() -> list:
    return [ConnectionErrorRetryHandler(max_retry_count=1)]


class SlackWebhookSender:
    def __init__(self, url: str, timeouts: Timeouts):
        self.client = WebhookClient(url, timeout=int(max(1, timeouts.connect + timeouts.read)),
                                    retry_handlers=_retry_handlers())

    def send(self, body: dict, idempotency_key: str) -> DeliveryResult:
        try:
            response = self.client.send_dict(body)
        except TimeoutError as exc:
            return DeliveryResult.retry(f"timeout ({exc}): outcome unknown", unknown=True)
        except (urllib.error.URLError, OSError) as exc:
            return DeliveryResult.retry(f"transport error: {type(exc).__name__}: {exc}")
        text = (response.body or "").strip()
        if response.status_code == 200 and text == "ok":
            return DeliveryResult.ok()
        reason = f"HTTP {response.status_code}: {text[:200]}"
        if response.status_code == 429:
            return DeliveryResult.retry(reason, retry_after_seconds(_header(response.headers, "Retry-After")) or 1.0)
        if response.status_code >= 500 or response.status_code == 408:
            return DeliveryResult.retry(reason)
        return DeliveryResult.failed(reason)  # invalid_payload, no_service, channel_not_found, …

    def close(self) -> None:
        pass


class SlackApiSender:
    """chat.postMessage with a bot token, to `channel`."""

    def __init__(self, token: str, channel: str, api_url: str, timeouts: Timeouts):
        self.channel = channel
        self.client = WebClient(token=token, base_url=api_url, timeout=int(max(1, timeouts.connect + timeouts.read)),
                                retry_handlers=_retry_handlers())

    def send(self, body: dict, idempotency_key: str) -> DeliveryResult:
        try:
            self.client.chat_postMessage(**(body | {"channel": self.channel}))
        except SlackApiError as exc:
            response = exc.response
            error = str(response.get("error", "")) if hasattr(response, "get") else ""
            reason = f"HTTP {response.status_code}: {error or 'error'}"
            if response.status_code == 429 or error in ("ratelimited", "rate_limited"):
                return DeliveryResult.retry(reason,
                                            retry_after_seconds(_header(response.headers, "Retry-After")) or 1.0)
            if response.status_code >= 500 or error in RETRYABLE_API_ERRORS:
                return DeliveryResult.retry(reason)
            return DeliveryResult.failed(reason)
        except TimeoutError as exc:
            return DeliveryResult.retry(f"timeout ({exc}): outcome unknown", unknown=True)
        except (urllib.error.URLError, OSError) as exc:
            return DeliveryResult.retry(f"transport error: {type(exc).__name__}: {exc}")
        return DeliveryResult.ok()

    def close(self) -> None:
        pass


def _header(headers: dict | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None
