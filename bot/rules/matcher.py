"""Compiled rules and the index that keeps unrelated rules free.

Rules are indexed by the event names they require (`match.event`: code, type or category). For an
event, the candidate list for its (code, type, category) is computed once and cached, so 1,000 rules
for other event families cost one dict lookup. Candidates are then checked condition by condition.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.events import Event
from bot.rules.model import RuleSpec
from bot.rules.patterns import ObjectPattern

log = logging.getLogger(__name__)

_GLOB_CHARS = re.compile(r"[*?\[]")


def is_glob(text: str) -> bool:
    return bool(_GLOB_CHARS.search(text))


@dataclass(frozen=True, slots=True)
class Condition:
    """One `match` key (or `when`): a fast test, and a reason for --explain when it fails."""

    name: str
    test: Callable[[Event], bool]
    reason: Callable[[Event], str]


class NameMatcher:
    """Plain values and globs, any of; used by the workspace, event and status shorthands."""

    def __init__(self, values: Iterable[str], *, fold: bool = False):
        self.values = list(values)
        self.fold = fold
        self.exact = {v.lower() if fold else v for v in self.values if not is_glob(v)}
        self.globs = [re.compile(fnmatch.translate(v.lower() if fold else v)) for v in self.values if is_glob(v)]

    def __call__(self, *candidates: str | None) -> bool:
        if not self.globs and not self.fold:  # the common case: plain names
            exact = self.exact
            for c in candidates:
                if c in exact:
                    return True
            return False
        for c in candidates:
            if c is None:
                continue
            key = c.lower() if self.fold else c
            if key in self.exact or any(g.match(key) for g in self.globs):
                return True
        return False

    def describe(self) -> str:
        return self.values[0] if len(self.values) == 1 else "[" + ", ".join(self.values) + "]"


@dataclass(slots=True)
class CompiledRule:
    spec: RuleSpec
    position: int  # global rule order
    source: str  # "PATH:LINE" for messages
    event_names: NameMatcher | None
    conditions: list[Condition]  # after the event condition, in evaluation order
    status_names: NameMatcher | None = None  # also checked when candidates are computed
    templates: dict[str, Any] = field(default_factory=dict)  # channel name -> CompiledTemplate
    mentions: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # channel -> "all" or compiled Jinja
    dedup_key: Any = None  # compiled Jinja template
    dedup_window: float = 0.0
    tests: tuple[Callable[[Event], bool], ...] = ()

    def __post_init__(self) -> None:
        self.tests = tuple(c.test for c in self.conditions)

    @property
    def name(self) -> str:
        return self.spec.name

    def matches_rest(self, event: Event) -> bool:
        for test in self.tests:
            if not test(event):
                return False
        return True

    def first_failure(self, event: Event) -> str | None:
        if not self.spec.enabled:
            return "enabled: false"
        if self.event_names is not None and not self.event_names(event.code, event.type, event.category):
            return f"event: {event.code or event.type} != {self.event_names.describe()}"
        for condition in self.conditions:
            if not condition.test(event):
                return condition.reason(event)
        return None


class RuleSet:
    """All enabled rules, in order, with the event-name index."""

    def __init__(self, rules: list[CompiledRule]):
        self.rules = rules
        self.enabled = [r for r in rules if r.spec.enabled]
        self._exact: dict[str, list[CompiledRule]] = {}
        self._unindexed: list[CompiledRule] = []  # globs or no `event` condition
        for rule in self.enabled:
            names = rule.event_names
            if names is None or names.globs:
                self._unindexed.append(rule)
            for name in names.exact if names else ():
                self._exact.setdefault(name, []).append(rule)
        self._candidates: dict[tuple, tuple[CompiledRule, ...]] = {}

    def candidates(self, event: Event) -> tuple[CompiledRule, ...]:
        return self.candidates_for((event.code, event.type, event.category, event.status))

    def candidates_for(self, key: tuple) -> tuple[CompiledRule, ...]:
        """Rules that may match events of this (code, type, category, status), cached."""
        found = self._candidates.get(key)
        if found is None:
            found = self._compute_candidates(*key)
            if len(self._candidates) > 10_000:  # unbounded names in hostile input: keep memory flat
                self._candidates.clear()
            self._candidates[key] = found
        return found

    def _compute_candidates(self, code: str | None, type_: str | None, category: str | None,
                            status: str | None) -> tuple[CompiledRule, ...]:
        picked: dict[int, CompiledRule] = {}
        for name in (code, type_.lower() if type_ else None, category):
            for rule in self._exact.get(name or "", ()):
                picked[rule.position] = rule
        for rule in self._unindexed:
            if rule.event_names is None or rule.event_names(code, type_, category):
                picked[rule.position] = rule
        # the status is part of the cache key too: a `status:` that can't match drops the rule here
        return tuple(picked[p] for p in sorted(picked)
                     if picked[p].status_names is None or picked[p].status_names(status))

    def match(self, event: Event) -> list[CompiledRule]:
        """Matching rules in rule order; a matching rule with `stop: true` ends the evaluation."""
        matched = []
        for rule in self.candidates(event):
            if rule.matches_rest(event):
                matched.append(rule)
                if rule.spec.stop:
                    break
        return matched

    def explain(self, event: Event) -> list[tuple[CompiledRule, str | None]]:
        """Every rule with None (matched) or the first condition that failed."""
        result: list[tuple[CompiledRule, str | None]] = []
        stopped_by: str | None = None
        for rule in self.rules:
            if stopped_by:
                result.append((rule, f"not evaluated: rule {stopped_by} matched first and has stop: true"))
                continue
            reason = rule.first_failure(event)
            result.append((rule, reason))
            if reason is None and rule.spec.stop:
                stopped_by = rule.name
        return result


# ----------------------------------------------------------------------- condition constructors


def workspace_condition(values: list[str]) -> Condition:
    names = NameMatcher(values)

    def reason(event: Event) -> str:
        shown = event.workspace.name or event.workspace.id or "none"
        if event.workspace.name and event.workspace.id:
            shown = f"{event.workspace.name} ({event.workspace.id})"
        return f"workspace: {shown} != {names.describe()}"

    return Condition("workspace", lambda e: names(e.workspace.id, e.workspace.name), reason)


def status_condition(values: list[str]) -> Condition:
    names = NameMatcher(values, fold=True)
    return Condition("status", lambda e: names(e.status),
                     lambda e: f"status: {e.status or 'none'} != {names.describe()}")


def data_condition(pattern: ObjectPattern) -> Condition:
    return Condition("data", lambda e: pattern.test(e.data), lambda e: pattern.explain(e.data) or "data")


def pattern_condition(pattern: ObjectPattern) -> Condition:
    return Condition("pattern", lambda e: pattern.test(e.as_cloudevent()),
                     lambda e: "pattern: " + (pattern.explain(e.as_cloudevent()) or "no match"))


def when_condition(expression: Any, source: str, rule_name: str,
                   on_error: Callable[[str, Exception], None]) -> Condition:
    rule_context = {"name": rule_name}

    def evaluate(event: Event) -> tuple[bool, Exception | None]:
        try:
            return bool(expression(event=event, rule=rule_context)), None
        except Exception as exc:  # a template error in user code must never stop the bot
            return False, exc

    def test(event: Event) -> bool:
        ok, error = evaluate(event)
        if error is not None:
            on_error(rule_name, error)
        return ok

    def reason(event: Event) -> str:
        ok, error = evaluate(event)
        if error is not None:
            return f"when: error evaluating {source!r}: {error}"
        return f"when: {source} is false"

    return Condition("when", test, reason)
