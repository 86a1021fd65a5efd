"""Generic JSON webhook: title, Markdown text, rule, dedup key and the normalised event."""

from __future__ import annotations

import re

import httpx

from bot.channels.base import DeliveryResult, Message, Timeouts, retry_after_seconds

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
        "mentions": [p.model_dump(exclude_none=True) for p in message.mentions.people]
        + ([{"name": "all"}] if message.mentions.everyone else []),
    }


class WebhookSender:
    """2xx delivered; 408, 429 and 5xx retried (Retry-After honoured); other 4xx permanent."""

    def __init__(self, url: str, timeouts: Timeouts):
        self.url = url
        self.http = httpx.Client(timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect))

    def send(self, body: dict, idempotency_key: str) -> DeliveryResult:
        try:
            response = self.http.post(self.url, json=body, headers={"X-Idempotency-Key": idempotency_key})
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(f"timeout ({type(exc).__name__}): outcome unknown", unknown=True)
        except httpx.TransportError as exc:
            return DeliveryResult.retry(f"transport error: {type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return DeliveryResult.ok()
        reason = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in (408, 429) or response.status_code >= 500:
            return DeliveryResult.retry(reason, retry_after_seconds(response.headers.get("Retry-After")))
        return DeliveryResult.failed(reason)

    def close(self) -> None:
        self.http.close()
