"""decode -> match -> render: where an event becomes notifications (`Pipeline.notifications`).

The same object serves `test` (strict templates, nothing sent), and later `replay` and `run`, which
add dedup, delivery and acknowledgement around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from jinja2 import UndefinedError

from bot import channels, events
from bot.channels.base import Mentions, Message
from bot.config import LoadedConfig
from bot.events import Event
from bot.rules.loader import CompiledTemplate, LoadedRules, load_rules
from bot.rules.matcher import CompiledRule
from bot.templates import Rendered, TemplateEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notification:
    rule: str
    channel: str
    channel_type: str
    dedup_key: str
    window: float  # seconds
    body: dict[str, Any]
    event: Event
    template_error: str | None = None  # the template failed; `body` is what would be sent instead

    def summary(self) -> dict[str, Any]:
        """The SPEC §5 `notifications[]` object."""
        out = {"rule": self.rule, "channel": self.channel, "channel_type": self.channel_type,
               "dedup_key": self.dedup_key, "body": self.body}
        if self.template_error:
            out["template_error"] = self.template_error
        return out


class Pipeline:
    def __init__(self, loaded: LoadedConfig, rules: LoadedRules, engine: TemplateEngine, *, strict: bool = False,
                 metrics=None):
        self.loaded = loaded
        self.config = loaded.config
        self.rules = rules
        self.engine = engine
        self.strict = strict  # `dwbot test`: report undefined template values as errors
        self.tz = engine.tz
        self.template_fallbacks = 0
        self.metrics = metrics

    @classmethod
    def load(cls, loaded: LoadedConfig, rule_paths: list[str] | None = None, *, strict: bool = False,
             metrics=None) -> Pipeline:
        """Compile the rules of a loaded config. Raises InvalidConfig."""
        engine = TemplateEngine(events.zone(loaded.config.timezone))

        def on_when_error(rule: str, error: Exception) -> None:
            log.warning("rule %s: `when` failed: %s", rule, error, extra={"rule": rule})
            if metrics is not None:
                metrics.rule_errors.labels(rule).inc()

        rules = load_rules(loaded.rule_paths(rule_paths), loaded.config, engine, on_when_error)
        return cls(loaded, rules, engine, strict=strict, metrics=metrics)

    def decode(self, value: bytes | str) -> Event:
        return events.decode(value, workspaces=self.config.workspaces, tz=self.tz)

    def normalise(self, raw: Any) -> Event:
        return events.normalise(raw, workspaces=self.config.workspaces, tz=self.tz)

    def decode_if_wanted(self, value: bytes | str) -> Event | None:
        """Like decode, but None (without building the Event) when no rule can apply to an event of
        this code, type, category and status — the hot path of `run`. Raises InvalidEvent."""
        raw = events.parse(value)
        classified = events.classify(raw)
        if not self.rules.ruleset.candidates_for(classified.key):
            return None
        return events.build(classified, raw, workspaces=self.config.workspaces, tz=self.tz)

    def notifications(self, event: Event) -> list[Notification]:
        """Every notification the event causes, in rule order then `notify` order."""
        out: list[Notification] = []
        for rule in self.rules.ruleset.match(event):
            for target in rule.spec.notify:
                channel = self.config.channels[target.channel]
                out.append(self._render(rule, target.channel, channel.type, rule.templates[target.channel], event))
        return out

    def _render(self, rule: CompiledRule, channel: str, channel_type: str, template: CompiledTemplate | None,
                event: Event) -> Notification:
        context = {"event": event, "rule": {"name": rule.name, "description": rule.spec.description},
                   "channel": {"name": channel, "type": channel_type}}
        dedup_key = self._dedup_key(rule, context)
        error = None
        try:
            message = self._message(rule, channel_type, template, event, dedup_key, context, strict=self.strict)
        except UndefinedError as exc:
            error = f"template {template.name if template else '?'}: {exc}"
            try:  # what `run` would send: undefined values render empty there
                message = self._message(rule, channel_type, template, event, dedup_key, context, strict=False)
            except Exception as exc2:  # noqa: BLE001 - any user-template failure falls back
                error = f"template {template.name if template else '?'}: {exc2}"
                message = self._fallback(rule, event, dedup_key, error, context)
        except Exception as exc:  # noqa: BLE001
            error = f"template {template.name if template else '?'}: {type(exc).__name__}: {exc}"
            message = self._fallback(rule, event, dedup_key, error, context)
        if error:
            self.template_fallbacks += 1
            if self.metrics is not None:
                self.metrics.template_fallbacks.inc()
            log.warning("rule %s, channel %s, event %s: %s", rule.name, channel, event.id, error,
                        extra={"rule": rule.name, "channel": channel, "event_id": event.id})
        body = channels.build_body(channel_type, message)
        return Notification(rule.name, channel, channel_type, dedup_key, rule.dedup_window, body, event, error)

    def _message(self, rule: CompiledRule, channel_type: str, template: CompiledTemplate | None, event: Event,
                 dedup_key: str, context: dict, *, strict: bool) -> Message:
        if template is None:
            raise ValueError("no template")

        def render(compiled: Any) -> Any:
            if compiled is None:
                return Rendered("", ())
            if isinstance(compiled, dict):
                return {k: render(v) for k, v in compiled.items()}
            if isinstance(compiled, list):
                return [render(v) for v in compiled]
            if hasattr(compiled, "generate"):
                return self.engine.render(compiled, context, strict=strict)
            return compiled

        custom = template.custom.get(channel_type)
        return Message(rule.name, event, dedup_key, render(template.title), render(template.text),
                       render(custom) if custom is not None else None,
                       self._mentions(rule, context["channel"]["name"], context))

    def _mentions(self, rule: CompiledRule, channel: str, context: dict) -> Mentions:
        """`mention:` entries -> configured people. Only `people:` can produce a mention, so event
        content never pings anyone; a UID without an entry there is skipped."""
        entries = rule.mentions.get(channel, ())
        if not entries:
            return Mentions()
        people, everyone = [], False
        for entry in entries:
            if entry == "all":
                everyone = True
                continue
            for uid in self.engine.render(entry, context).plain.replace(",", " ").split():
                person = self.config.people.get(uid)
                if person is None:
                    log.info("rule %s: no `people:` entry for UID %s; not mentioned", rule.name, uid)
                elif person not in people:
                    people.append(person)
        return Mentions(tuple(people), everyone)

    def _fallback(self, rule: CompiledRule, event: Event, dedup_key: str, error: str, context: dict) -> Message:
        """Never drop a notification because its template broke: send the facts instead."""
        title = Rendered.of("dwbot: rule {} matched {}", rule.name, event.code or event.type)
        text = Rendered.of("**Rule** {}\n**Event** {}\n**Workspace** {}\n**Event id** {}\n\n"
                           "_The rule's template failed: {}_", rule.name, event.code or event.type,
                           event.workspace.name or event.workspace.id or "-", event.id, error)
        try:
            mentions = self._mentions(rule, context["channel"]["name"], context)
        except Exception:  # noqa: BLE001 - the fallback must always produce a message
            mentions = Mentions()
        return Message(rule.name, event, dedup_key, title, text, None, mentions)

    def _dedup_key(self, rule: CompiledRule, context: dict) -> str:
        try:
            key = self.engine.render(rule.dedup_key, context).plain.strip()
        except Exception as exc:  # noqa: BLE001
            log.warning("rule %s: dedup key failed (%s); using the event id", rule.name, exc)
            key = ""
        if not key:
            event = context["event"]
            key = f"{rule.name}:{event.source}:{event.id}"
        return key
