"""One module per chat platform behind one small interface.

For now (the core engine) a platform module turns a rendered `Message` into the exact JSON body it
would post: `build_body(message) -> dict`. Everything platform-specific — markup, escaping, limits —
lives in that module only.
"""

from __future__ import annotations

from types import ModuleType

from bot.channels import dingtalk, slack, webhook
from bot.channels.base import Message

FORMATS: dict[str, ModuleType] = {"dingtalk": dingtalk, "slack": slack, "webhook": webhook}


def build_body(channel_type: str, message: Message) -> dict:
    return FORMATS[channel_type].build_body(message)


__all__ = ["FORMATS", "Message", "build_body"]
