"""One module per chat platform behind one small interface.

For now (the core engine) a platform module turns a rendered `Message` into the exact JSON body it
would post: `build_body(message) -> dict`. Everything platform-specific — markup, escaping, limits —
lives in that module only.
"""

from __future__ import annotations

from types import ModuleType

from bot.channels import dingtalk, slack, webhook
from bot.channels.base import DeliveryResult, Message, Outcome, Sender, Timeouts
from bot.clock import Clock
from bot.config import ChannelConfig
from bot.units import Rate

FORMATS: dict[str, ModuleType] = {"dingtalk": dingtalk, "slack": slack, "webhook": webhook}

# reference chat-platforms §0: DingTalk 20 messages/min per robot, Slack about 1 message/s
DEFAULT_RATES: dict[str, Rate | None] = {"dingtalk": Rate(20, 60), "slack": Rate(1, 1), "webhook": None}


def build_body(channel_type: str, message: Message) -> dict:
    return FORMATS[channel_type].build_body(message)


def make_sender(config: ChannelConfig, clock: Clock, timeouts: Timeouts | None = None) -> Sender:
    timeouts = timeouts or Timeouts()
    if config.type == "dingtalk":
        return dingtalk.DingTalkSender(config.url, config.secret, clock, timeouts)
    if config.type == "slack":
        if config.token and config.channel:
            return slack.SlackApiSender(config.token, config.channel, config.api_url, timeouts)
        return slack.SlackWebhookSender(config.url, timeouts)
    return webhook.WebhookSender(config.url, timeouts)


def rate_of(config: ChannelConfig) -> Rate | None:
    return config.rate_limit or DEFAULT_RATES[config.type]


__all__ = ["FORMATS", "DeliveryResult", "Message", "Outcome", "Sender", "Timeouts", "build_body", "make_sender",
           "rate_of"]
