"""Typed model of a rule file (SPEC §4). Structure and types only; meaning is checked in loader.py."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from bot.units import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    """`x` -> [x]; numbers become strings (workspace ids are written either way)."""
    items = value if isinstance(value, list) else [value]
    return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in items]


_NAME = {"type": ["string", "number"]}
NameList = Annotated[
    list[str],
    BeforeValidator(_as_list),
    WithJsonSchema({"anyOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}]}),
]


class TemplateSpec(_Model):
    title: str | None = Field(None, description="plain-text headline (Jinja)")
    text: str | None = Field(None, description="Markdown body (Jinja); converted for each chat")
    dingtalk: dict[str, Any] | None = Field(None, description="complete DingTalk body instead of title/text; "
                                                              "every string in it is rendered")
    slack: dict[str, Any] | None = Field(None, description="complete Slack body instead of title/text; "
                                                           "every string in it is rendered")


class NotifyTarget(_Model):
    channel: str
    template: str | TemplateSpec | None = Field(None, description="template for this channel only")
    mention: list[str] = Field(default_factory=list, description=(
        "people to @-mention: Jinja strings giving DataWorks UIDs (mapped through `people:` in the config), "
        "or `all` to notify everyone in the chat"))


def _notify_targets(value: Any) -> Any:
    """`notify: name`, `notify: [name, {channel: name, template: …}]` -> list of NotifyTarget."""
    items = value if isinstance(value, list) else [value]
    return [NotifyTarget(channel=v) if isinstance(v, str) else v for v in items]


class DedupSpec(_Model):
    key: str | None = Field(None, description="Jinja; default {{ rule.name }}:{{ event.source }}:{{ event.id }}")
    window: Duration | None = Field(None, description="default: dedup.window of the config (24h)")


class MatchSpec(_Model):
    workspace: NameList | None = Field(None, description="workspace id or name; glob or list (any of)")
    event: NameList | None = Field(None, description="event code, type or category; glob or list")
    status: NameList | None = Field(None, description="normalised status (FAILURE, SUCCESS, …); list allowed")
    data: dict[str, Any] | None = Field(None, description="EventBridge-style pattern on the payload")
    pattern: dict[str, Any] | None = Field(None, description="EventBridge pattern on the CloudEvents form")


class RuleSpec(_Model):
    name: str = Field(min_length=1, description="unique across all rule files")
    description: str | None = None
    enabled: bool = True
    match: MatchSpec = Field(default_factory=MatchSpec)
    when: str | None = Field(None, description="Jinja expression; the rule matches only if it is true")
    notify: Annotated[list[NotifyTarget], BeforeValidator(_notify_targets), WithJsonSchema({
        "anyOf": [{"type": "string"},
                  {"type": "array", "minItems": 1,
                   "items": {"anyOf": [{"type": "string"}, {"title": "NotifyTarget"}]}}],
        "description": "channel names, or {channel, template} objects"})] = Field(min_length=1)
    template: str | TemplateSpec | None = Field(None, description="template name, or an inline template")
    dedup: DedupSpec = Field(default_factory=DedupSpec)
    stop: bool = Field(False, description="true: rules after this one are not evaluated for the event")


class RuleFile(_Model):
    templates: dict[str, TemplateSpec] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)


def rule_file_schema() -> dict[str, Any]:
    """JSON Schema of a rule file, for editors (`dwbot schema rules`)."""
    schema = RuleFile.model_json_schema()
    target = NotifyTarget.model_json_schema()  # referenced from the `notify` shorthand schema
    schema["$defs"].update(target.pop("$defs", {}))
    schema["$defs"]["NotifyTarget"] = target
    notify = schema["$defs"]["RuleSpec"]["properties"]["notify"]
    notify["anyOf"][1]["items"]["anyOf"][1] = {"$ref": "#/$defs/NotifyTarget"}  # filled in here: pydantic
    return schema                                                                # can't emit this $ref itself
