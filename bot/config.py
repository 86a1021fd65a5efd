"""The config file (SPEC §3): typed model, `${ENV}` interpolation, validation with positions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot import yamlsource
from bot.errors import InvalidConfig, Problem
from bot.units import Duration, RateLimit
from bot.validation import problems_from_pydantic

DEFAULT_CONFIG_PATH = "bot.yaml"
CHANNEL_TYPES = ("dingtalk", "slack", "webhook")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Model):
    topics: list[str] = Field(default_factory=list, description="topics to consume (required for `run`)")
    config: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="librdkafka settings, passed through to confluent-kafka")
    max_in_flight: int = Field(1000, ge=1, description="events being delivered at once; above it "
                                                       "consumption pauses (backpressure)")
    commit_interval: Duration = Field(2, description="how often handled offsets are committed")
    shutdown_timeout: Duration = Field(30, description="on SIGTERM, how long in-flight work may finish")
    startup_timeout: Duration = Field(30, description="give up with a clear error if Kafka can't be "
                                                      "reached within this")


class ChannelConfig(_Model):
    type: Literal["dingtalk", "slack", "webhook"]
    url: str | None = Field(None, description="webhook URL (DingTalk robot URL with access_token, "
                                              "Slack incoming webhook, or any HTTP endpoint)")
    secret: str | None = Field(None, description="DingTalk signing secret (SEC…); enables HMAC-SHA256 signing")
    token: str | None = Field(None, description="Slack bot token (xoxb-…) for chat.postMessage, with `channel`")
    channel: str | None = Field(None, description="Slack channel id or name for chat.postMessage")
    api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (for chat.postMessage)")
    rate_limit: RateLimit | None = Field(None, description="e.g. 20/min; default per type "
                                                           "(dingtalk 20/min, slack 1/s)")

    @model_validator(mode="after")
    def _destination(self) -> ChannelConfig:
        if self.type == "slack":
            if not self.url and not (self.token and self.channel):
                raise ValueError("a slack channel needs `url` (incoming webhook) or `token` and `channel`")
        elif not self.url:
            raise ValueError(f"a {self.type} channel needs `url`")
        if self.secret and self.type != "dingtalk":
            raise ValueError("`secret` (signing) is only used by dingtalk channels")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("`url` must start with http:// or https://")
        return self


class Person(_Model):
    name: str | None = Field(None, description="display name")
    mobile: str | None = Field(None, description="DingTalk: mobile number to @-mention")
    dingtalk_user_id: str | None = Field(None, description="DingTalk: userId to @-mention")
    slack_user_id: str | None = Field(None, description="Slack: member id (U…) to @-mention")

    @field_validator("mobile", "dingtalk_user_id", "slack_user_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class DedupConfig(_Model):
    window: Duration = Field(24 * 3600, description="default dedup window for rules that set none")


class DeadLetterConfig(_Model):
    file: str | None = Field("dwbot-dead-letters.jsonl", description="JSON Lines file for dead letters")
    topic: str | None = Field(None, description="Kafka topic for dead letters")


class DeliveryConfig(_Model):
    max_retry_time: Duration = Field(3600, description="give up retrying and dead-letter after this long")
    connect_timeout: Duration = Field(5, description="HTTP connect timeout")
    read_timeout: Duration = Field(15, description="HTTP read timeout; a timeout is an unknown outcome, retried")


class ServerConfig(_Model):
    listen: str | None = Field(None, description="HOST:PORT for /healthz, /readyz and /metrics")


class Config(_Model):
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    state: str = Field("sqlite:///dwbot-state.db",
                       description="memory:// | sqlite:///PATH | redis://HOST:PORT/DB")
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    dead_letter: DeadLetterConfig = Field(default_factory=DeadLetterConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    workspaces: dict[str, str] = Field(default_factory=dict, description="workspace id -> display name")
    people: dict[str, Person] = Field(default_factory=dict,
                                      description="DataWorks UID -> chat identities, for `mention:`")
    timezone: str = Field("Asia/Shanghai", description="IANA zone used to render times")
    rules: list[str] = Field(default_factory=lambda: ["rules/"],
                             description="rule files or directories (relative to this file)")
    server: ServerConfig = Field(default_factory=ServerConfig)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @field_validator("state")
    @classmethod
    def _state(cls, value: str) -> str:
        if not value.startswith(("memory://", "sqlite:///", "redis://", "rediss://")):
            raise ValueError("state must be memory://, sqlite:///PATH or redis://HOST:PORT/DB")
        return value

    def secrets(self) -> list[str]:
        """Every configured credential, so that logs and outputs can redact it."""
        found = [v for ch in self.channels.values() for v in (ch.url, ch.secret, ch.token) if v]
        found += [str(v) for k, v in self.kafka.config.items()
                  if any(word in k for word in ("password", "secret", "token")) and v]
        return [s for s in found if len(s) >= 4]


class LoadedConfig:
    """A validated config plus where it came from (rule paths resolve against its folder)."""

    def __init__(self, config: Config, path: str | None, base_dir: Path):
        self.config = config
        self.path = path
        self.base_dir = base_dir

    def rule_paths(self, override: list[str] | None = None) -> list[Path]:
        paths = override if override else self.config.rules
        base = Path.cwd() if override else self.base_dir
        return [Path(p) if Path(p).is_absolute() else base / p for p in paths]

    def redact(self, text: str) -> str:
        for secret in sorted(self.config.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def config_path(explicit: str | None) -> str | None:
    """-c FILE, else $DWBOT_CONFIG, else ./bot.yaml if it exists; None means the embedded defaults."""
    if explicit:
        return explicit
    if os.environ.get("DWBOT_CONFIG"):
        return os.environ["DWBOT_CONFIG"]
    return DEFAULT_CONFIG_PATH if Path(DEFAULT_CONFIG_PATH).exists() else None


def load_config(path: str | None, *, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load and validate the config file (or the embedded defaults). Raises InvalidConfig."""
    if path is None:
        text = resources.files("bot").joinpath("defaults/bot.yaml").read_text(encoding="utf-8")
        source, problems = yamlsource.load("<embedded defaults>", text, env=env)
        base_dir = Path.cwd()
    else:
        source, problems = yamlsource.load(path, env=env)
        base_dir = Path(path).resolve().parent
        if not Path(path).exists():
            raise InvalidConfig([Problem(path, 0, 0, "config file not found")])
    if problems and source.value is None:
        raise InvalidConfig(problems)
    value: Any = source.value if source.value is not None else {}
    if not isinstance(value, dict):
        raise InvalidConfig(problems + [source.problem((), "the config file must be a mapping of keys")])
    config, schema_problems = _validate(source, value)
    problems += schema_problems
    if problems or config is None:
        raise InvalidConfig(problems)
    return LoadedConfig(config, path, base_dir)


def _validate(source: yamlsource.Source, value: dict) -> tuple[Config | None, list[Problem]]:
    from pydantic import ValidationError

    try:
        return Config.model_validate(value), []
    except ValidationError as exc:
        return None, problems_from_pydantic(source, exc, Config)
