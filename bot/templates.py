"""Sandboxed Jinja rendering where event values can never become markup.

Every `{{ expression }}` output is replaced by a placeholder while the template renders. The template's
own literal text (its Markdown) is then converted for a destination, and only afterwards are the
placeholders filled with the values, escaped for that destination. So `**{{ x }}**` stays bold on
every chat while a value such as `<!channel>` or `[x](https://evil)` arrives as inert text.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot import catalog
from bot.events import parse_time

MAX_OUTPUT_CHARS = 100_000
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_values: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("dwbot_template_values", default=None)
_strict: contextvars.ContextVar[bool] = contextvars.ContextVar("dwbot_template_strict", default=False)


class _Environment(ImmutableSandboxedEnvironment):
    """Undefined handling is chosen per render (Jinja looks `undefined` up at run time), so one
    compiled template serves both `dwbot test` (StrictUndefined) and `run` (lenient)."""

    @property
    def undefined(self):  # type: ignore[override]
        return StrictUndefined if _strict.get() else ChainableUndefined

    @undefined.setter
    def undefined(self, _value) -> None:
        pass


class Trusted(str):
    """Text that a filter of ours produced as markup on purpose; inserted without escaping."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """Template output with placeholders, and the raw values that fill them."""

    source: str
    values: tuple[str, ...]

    def format(self, escape: Callable[[str], str] = str, convert: Callable[[str], str] | None = None) -> str:
        text = convert(self.source) if convert else self.source
        if not self.values:
            return text
        return _PLACEHOLDER.sub(lambda m: escape(self.values[int(m.group(1))]), text)

    @property
    def plain(self) -> str:
        return self.format()

    @classmethod
    def of(cls, literal: str, *values: object) -> Rendered:
        """A message built in code: `literal` holds `{}` where each value goes (escaped later)."""
        clean = [str(v).replace(_OPEN, "").replace(_CLOSE, "") for v in values]
        return cls(literal.format(*(f"{_OPEN}{i}{_CLOSE}" for i in range(len(clean)))), tuple(clean))


def _finalize(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Trusted):
        return str(value)
    text = str(value).replace(_OPEN, "").replace(_CLOSE, "")
    collector = _values.get()
    if collector is None:
        return text
    collector.append(text)
    return f"{_OPEN}{len(collector) - 1}{_CLOSE}"


class TemplateEngine:
    """One Jinja environment per (timezone, strictness): filters and the sandbox live here."""

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self.env = _Environment(
            finalize=_finalize,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self.env.filters.update(
            datetime=self.filter_datetime,
            duration=filter_duration,
            status_name=lambda v: catalog.status_name(v) or v,
            dag_type=lambda v: catalog.DAG_TYPES.get(v, v) if isinstance(v, int) else v,
            check_result=lambda v: catalog.CHECK_RESULTS.get(v, v) if isinstance(v, int) else v,
            baseline_status=lambda v: catalog.BASELINE_STATUSES.get(v, v) if isinstance(v, int) else v,
        )

    # -- compile

    def compile(self, source: str):
        """Compile a template; raises jinja2.TemplateSyntaxError."""
        token = _strict.set(True)  # so constant folding never bakes a lenient Undefined into the code
        try:
            return self.env.from_string(source)
        finally:
            _strict.reset(token)

    def compile_expression(self, source: str):
        """Compile a `when` expression; raises jinja2.TemplateSyntaxError."""
        self.env.parse("{{ " + source + " }}")  # full syntax check with line numbers
        return self.env.compile_expression(source, undefined_to_none=False)

    def check_syntax(self, source: str) -> TemplateSyntaxError | None:
        try:
            ast = self.env.parse(source)
        except TemplateSyntaxError as exc:
            return exc
        for name in ast.find_all(nodes.Filter):
            if name.name not in self.env.filters:
                return TemplateSyntaxError(f"no filter named {name.name!r}", name.lineno)
        return None

    # -- render

    def render(self, template, context: dict[str, Any], *, strict: bool = False) -> Rendered:
        """Render with placeholders; output is bounded to MAX_OUTPUT_CHARS.

        strict: undefined values raise (jinja2.UndefinedError) instead of rendering as empty."""
        collector: list[str] = []
        token = _values.set(collector)
        strict_token = _strict.set(strict)
        try:
            pieces, size = [], 0
            for piece in template.generate(context):
                pieces.append(piece)
                size += len(piece)
                if size > MAX_OUTPUT_CHARS:
                    pieces.append("\n… [template output cut at 100,000 characters]")
                    break
            return Rendered("".join(pieces), tuple(collector))
        finally:
            _values.reset(token)
            _strict.reset(strict_token)

    def evaluate(self, expression, context: dict[str, Any], *, strict: bool = False) -> Any:
        token = _strict.set(strict)
        try:
            return expression(**context)
        finally:
            _strict.reset(token)

    # -- filters

    def filter_datetime(self, value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        """Epoch ms, epoch s, ISO string or datetime -> text in the configured zone."""
        if isinstance(value, ChainableUndefined | StrictUndefined):
            return str(value)
        parsed = parse_time(value, self.tz)
        if parsed is None:
            return "" if value is None else str(value)
        return parsed.astimezone(self.tz).strftime(fmt)


def filter_duration(value: Any) -> str:
    """Milliseconds -> `1h 02m 03s` (`2m 05s`, `45s`)."""
    if isinstance(value, datetime) or value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    try:
        total = int(float(value) // 1000)
    except (TypeError, ValueError):
        return str(value)
    sign = "-" if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{sign}{minutes}m {seconds:02d}s"
    return f"{sign}{seconds}s"
