"""What a chat would show for a request body, roughly, as terminal text."""

from __future__ import annotations

import json

ZWSP = "\u200b"


def preview_body(channel_type: str, body: dict) -> str:
    if channel_type == "dingtalk":
        part = body.get(body.get("msgtype", ""), {})
        if isinstance(part, dict):
            text = part.get("text") or part.get("content")
            if isinstance(text, str):
                return text.replace(ZWSP, "").replace("  \n", "\n")
    if channel_type == "slack" and isinstance(body.get("blocks"), list):
        lines = []
        for block in body["blocks"]:
            text = (block.get("text") or {}).get("text") if isinstance(block, dict) else None
            if text:
                lines.append(f"*{text}*" if block.get("type") == "header" else text)
        if lines:
            return "\n".join(lines).replace(ZWSP, "")
    if channel_type == "slack" and isinstance(body.get("text"), str):
        return body["text"].replace(ZWSP, "")
    if channel_type == "webhook":
        return f"{body.get('title', '')}\n{body.get('text', '')}"
    return json.dumps(body, ensure_ascii=False, indent=2)


def preview(notification) -> str:
    return preview_body(notification.channel_type, notification.body)
