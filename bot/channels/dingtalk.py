"""DingTalk custom robot: markdown body, value escaping, 20,000-byte limit.

DingTalk markdown is a small subset (reference chat-platforms §1.6): headings, quote, bold, italic,
links, images, lists. Line breaks need two trailing spaces. A person or everyone is notified only by
an `@…` token in the text (plus the `at` field), so values must never carry a live `@`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import urllib.parse

import httpx

from bot.channels.base import DeliveryResult, Message, Timeouts, format_custom
from bot.clock import Clock
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
    body: dict = {"msgtype": "markdown", "markdown": markdown}
    at, tokens = _at(message.mentions)
    if at:
        body["at"] = at
    markdown["text"] = _fit(body, markdown, "text", suffix=f"\n\n{' '.join(tokens)}" if tokens else "")
    return body


def _at(mentions) -> tuple[dict, list[str]]:
    """The `at` field and the `@…` tokens the text must also carry, or DingTalk notifies no one."""
    if not mentions:
        return {}, []
    mobiles = [p.mobile for p in mentions.people if p.mobile]
    user_ids = [p.dingtalk_user_id for p in mentions.people if p.dingtalk_user_id and not p.mobile]
    at = {"atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": mentions.everyone}
    tokens = [f"@{m}" for m in mobiles] + [f"@{u}" for u in user_ids] + (["@all"] if mentions.everyone else [])
    return at, tokens


def _fit(body: dict, part: dict, field: str, suffix: str = "") -> str:
    """Truncate part[field] until the whole body fits DingTalk's byte limit; `suffix` (the
    mention tokens) is kept whole after the cut."""
    original = part[field]

    def size_with(text: str) -> int:
        part[field] = text + suffix
        return body_size(body)

    fitted = fit_bytes(original, size_with, BODY_LIMIT_BYTES) + suffix
    part[field] = fitted
    return fitted


# ------------------------------------------------------------------------------------ sending
# reference chat-platforms §1.3 (signing), §1.7-1.9 (errors and limits)

RATE_LIMITED_CODES = {130101, 410100}
RATE_LIMIT_PAUSE = 60.0  # no Retry-After; a robot stays blocked for minutes: back off from a minute up
BUSY_CODES = {-1}  # 系统繁忙: platform busy


def sign(secret: str, timestamp_ms: str) -> str:
    """HMAC-SHA256(key=secret, msg="timestamp\\nsecret"), base64 — the raw value, not URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, now_ms: int) -> str:
    """The robot URL plus a fresh `timestamp` and `sign`, each encoded exactly once. The configured
    URL is never modified, so parameters cannot pile up across requests."""
    timestamp = str(now_ms)
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("timestamp", "sign")]
    query += [("timestamp", timestamp), ("sign", sign(secret, timestamp))]
    encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)  # '+' '/' '=' -> %2B %2F %3D
    return urllib.parse.urlunsplit(parts._replace(query=encoded))


class DingTalkSender:
    def __init__(self, url: str, secret: str | None, clock: Clock, timeouts: Timeouts):
        self.url = url
        self.secret = secret or None
        self.clock = clock
        self.http = httpx.Client(timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
                                 headers={"Content-Type": "application/json;charset=utf-8"})

    def send(self, body: dict, idempotency_key: str) -> DeliveryResult:
        url = signed_url(self.url, self.secret, int(self.clock.wall() * 1000)) if self.secret else self.url
        try:
            response = self.http.post(url, content=json.dumps(body, ensure_ascii=False).encode("utf-8"))
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(f"timeout ({type(exc).__name__}): outcome unknown", unknown=True)
        except httpx.TransportError as exc:
            return DeliveryResult.retry(f"transport error: {type(exc).__name__}: {exc}")
        return classify(response.status_code, response.text)

    def close(self) -> None:
        self.http.close()


def classify(status: int, text: str) -> DeliveryResult:
    """HTTP 200 is not success on DingTalk: only `errcode == 0` is."""
    if status >= 500 or status == 429:
        return DeliveryResult.retry(f"HTTP {status}")
    if status != 200:
        return DeliveryResult.failed(f"HTTP {status}: {text[:200]}")
    try:
        answer = json.loads(text)
        code = int(answer.get("errcode"))
    except (ValueError, TypeError, AttributeError):
        return DeliveryResult.retry(f"HTTP 200 with an unreadable body: {text[:200]!r}")
    message = str(answer.get("errmsg", ""))
    if code == 0:
        return DeliveryResult.ok()
    reason = f"errcode {code}: {message}"
    lowered = message.lower()
    if code in RATE_LIMITED_CODES or "too fast" in lowered or ("exceed" in lowered and "times" in lowered) \
            or "限流" in message:
        return DeliveryResult.retry(reason, RATE_LIMIT_PAUSE)
    if code in BUSY_CODES:
        return DeliveryResult.retry(reason)
    return DeliveryResult.failed(reason)  # 310000 security, 300001/300005/400101 token, 460101 size, …
