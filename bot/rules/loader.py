"""Rule files -> a compiled RuleSet, or every problem found, each at `PATH:LINE:COL`.

Checks: YAML syntax, unknown keys and wrong types (pydantic), durations, pattern operators and
regexes, event and status names, Jinja syntax of templates / `when` / dedup keys, references to
channels and templates, duplicate rule and template names.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError
from pydantic import ValidationError

from bot import catalog, yamlsource
from bot.config import Config
from bot.errors import InvalidConfig, Problem
from bot.rules import matcher
from bot.rules.model import RuleFile, RuleSpec, TemplateSpec
from bot.rules.patterns import compile_pattern
from bot.templates import TemplateEngine
from bot.validation import problems_from_pydantic
from bot.yamlsource import Loc, Source

DEFAULT_DEDUP_KEY = "{{ rule.name }}:{{ event.source }}:{{ event.id }}"
CUSTOM_BODY_PLATFORMS = ("dingtalk", "slack")

# Used when a rule names no template: the facts every DataWorks event has.
DEFAULT_TEMPLATE = TemplateSpec(
    title="[{{ event.workspace.name or event.workspace.id or 'DataWorks' }}] {{ event.code or event.type }}"
          "{% if event.status %} {{ event.status }}{% endif %}",
    text="**Event** {{ event.code or event.type }}{% if event.status %} · status **{{ event.status }}**{% endif %}\n"
         "**Workspace** {{ event.workspace.name or '-' }} ({{ event.workspace.id or '-' }})\n"
         "{% if event.data.nodeName or event.data.fileName %}**Node** {{ event.data.nodeName or event.data.fileName }}\n"
         "{% endif %}{% if event.data.taskId %}**Instance** {{ event.data.taskId }}\n{% endif %}"
         "**Time** {{ event.time | datetime }}\n"
         "**Event id** {{ event.id }}",
)


@dataclass
class CompiledTemplate:
    name: str
    title: Any  # jinja2.Template
    text: Any
    custom: dict[str, Any] = field(default_factory=dict)  # platform -> structure of compiled templates


@dataclass
class LoadedRules:
    ruleset: matcher.RuleSet
    files: list[str]
    templates: dict[str, CompiledTemplate]
    when_errors: Counter = field(default_factory=Counter)


def find_rule_files(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 0, 0, "rule path not found"))
    return files, problems


def load_rules(paths: list[Path], config: Config | None, engine: TemplateEngine,
               on_when_error: Callable[[str, Exception], None] | None = None) -> LoadedRules:
    """Load, validate and compile every rule file. Raises InvalidConfig with all problems."""
    files, problems = find_rule_files(paths)
    parsed: list[tuple[Source, RuleFile]] = []
    for file in files:
        source, file_problems = yamlsource.load(file, display=_display(file))
        problems += file_problems
        if source.value is None:
            continue
        if not isinstance(source.value, dict):
            problems.append(source.problem((), "a rule file must be a mapping with `rules:` and/or `templates:`"))
            continue
        try:
            parsed.append((source, RuleFile.model_validate(source.value)))
        except ValidationError as exc:
            problems += problems_from_pydantic(source, exc, RuleFile)
    compiler = _Compiler(config, engine, problems, on_when_error)
    loaded = compiler.compile(parsed)
    loaded.files = [_display(f) for f in files]
    if problems:
        raise InvalidConfig(problems)
    return loaded


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Compiler:
    def __init__(self, config: Config | None, engine: TemplateEngine, problems: list[Problem],
                 on_when_error: Callable[[str, Exception], None] | None):
        self.check_channels = config is not None  # without a valid config, channel names can't be checked
        self.config = config or Config()
        self.engine = engine
        self.problems = problems
        self.when_errors: Counter = Counter()
        self.broken_templates: set[str] = set()
        self.on_when_error = on_when_error

    def compile(self, parsed: list[tuple[Source, RuleFile]]) -> LoadedRules:
        templates = self._named_templates(parsed)
        default = self._template("(default)", DEFAULT_TEMPLATE, None, ())
        rules: list[matcher.CompiledRule] = []
        seen: dict[str, str] = {}
        for source, file in parsed:
            for index, spec in enumerate(file.rules):
                loc: Loc = ("rules", index)
                where = source.problem(loc, "")
                if spec.name in seen:
                    self._add(source, loc + ("name",), f"duplicate rule name {spec.name!r} "
                                                       f"(first defined at {seen[spec.name]})")
                else:
                    seen[spec.name] = f"{where.path}:{where.line}"
                rule = self._rule(source, loc, spec, len(rules), templates, default)
                if rule is not None:
                    rules.append(rule)
        return LoadedRules(matcher.RuleSet(rules), [], templates, self.when_errors)

    def _count_when_error(self, rule: str, error: Exception) -> None:
        self.when_errors[rule] += 1
        if self.on_when_error:
            self.on_when_error(rule, error)

    # ---------------------------------------------------------------------------- templates

    def _named_templates(self, parsed: list[tuple[Source, RuleFile]]) -> dict[str, CompiledTemplate]:
        templates: dict[str, CompiledTemplate] = {}
        origin: dict[str, str] = {}
        for source, file in parsed:
            for name, spec in file.templates.items():
                loc = ("templates", name)
                if name in templates:
                    self.problems.append(source.problem(loc, f"duplicate template name {name!r} "
                                                             f"(first defined in {origin[name]})", at_key=True))
                    continue
                compiled = self._template(name, spec, source, loc)
                origin[name] = source.path
                if compiled:
                    templates[name] = compiled
                else:
                    self.broken_templates.add(name)  # already reported; don't cascade into its users
        return templates

    def _template(self, name: str, spec: TemplateSpec, source: Source | None, loc: Loc) -> CompiledTemplate | None:
        ok = True

        def one(text: str | None, sub: Loc) -> Any:
            nonlocal ok
            if text is None:
                return None
            compiled = self._jinja(text, source, loc + sub, f"template {name}")
            ok = ok and compiled is not None
            return compiled

        compiled = CompiledTemplate(name, one(spec.title, ("title",)), one(spec.text, ("text",)))
        for platform in CUSTOM_BODY_PLATFORMS:
            body = getattr(spec, platform)
            if body:
                compiled.custom[platform] = self._custom(body, lambda text, sub: one(text, sub), (platform,))
        if spec.title is None and spec.text is None and not compiled.custom and source is not None:
            self.problems.append(source.problem(loc, f"template {name}: needs `title`, `text` or a platform body"))
            return None
        return compiled if ok else None

    def _custom(self, value: Any, compile_one: Callable[[str, Loc], Any], sub: Loc) -> Any:
        if isinstance(value, str):
            return compile_one(value, sub)
        if isinstance(value, dict):
            return {k: self._custom(v, compile_one, sub + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._custom(v, compile_one, sub + (i,)) for i, v in enumerate(value)]
        return value

    def _jinja(self, text: str, source: Source | None, loc: Loc, what: str) -> Any:
        error = self.engine.check_syntax(text)
        if error is None:
            try:
                return self.engine.compile(text)
            except TemplateSyntaxError as exc:
                error = exc
        if source is not None:
            self.problems.append(source.text_problem(loc, error.lineno or 1, f"{what}: Jinja syntax error: "
                                                                             f"{error.message}"))
        return None

    # -------------------------------------------------------------------------------- rules

    def _rule(self, source: Source, loc: Loc, spec: RuleSpec, position: int,
              templates: dict[str, CompiledTemplate], default: CompiledTemplate | None) -> matcher.CompiledRule | None:
        before = len(self.problems)
        match = spec.match
        event_names = None
        if match.event:
            event_names = matcher.NameMatcher(match.event, fold=True)
            self._check_names(source, loc + ("match", "event"), match.event, catalog.is_known_event_name,
                              "event", [k.code for k in catalog.EVENT_KINDS] + [k.type for k in catalog.EVENT_KINDS])
        conditions: list[matcher.Condition] = []
        status_names = matcher.NameMatcher(match.status, fold=True) if match.status else None
        if match.workspace:
            conditions.append(matcher.workspace_condition(match.workspace))
        if match.status:
            self._check_names(source, loc + ("match", "status"), match.status,
                              lambda s: s.upper() in catalog.STATUS_VALUES, "status", list(catalog.STATUS_VALUES))
            conditions.append(matcher.status_condition(match.status))
        for key, make in (("data", matcher.data_condition), ("pattern", matcher.pattern_condition)):
            spec_pattern = getattr(match, key)
            if spec_pattern is None:
                continue
            pattern, errors = compile_pattern(spec_pattern, loc + ("match", key), "data." if key == "data" else "")
            for error in errors:
                self._add(source, error.loc, f"match.{key}: {error}")
            if pattern is not None:
                conditions.append(make(pattern))
        if spec.when:
            try:
                expression = self.engine.compile_expression(spec.when)
                conditions.append(matcher.when_condition(expression, spec.when, spec.name, self._count_when_error))
            except TemplateSyntaxError as exc:
                self._add(source, loc + ("when",), f"when: Jinja syntax error: {exc.message}")

        rule_template = self._template_ref(source, loc + ("template",), spec.template, templates, default, spec.name)
        per_channel: dict[str, Any] = {}
        mentions: dict[str, tuple[Any, ...]] = {}
        for i, target in enumerate(spec.notify):
            mentions[target.channel] = tuple(
                "all" if m.strip().lower() in ("all", "@all") else
                self._jinja(m, source, loc + ("notify", i, "mention", j), "mention")
                for j, m in enumerate(target.mention))
            target_loc = loc + ("notify", i)
            if self.check_channels and target.channel not in self.config.channels:
                known = list(self.config.channels)
                hint = difflib.get_close_matches(target.channel, known, n=1)
                detail = f"did you mean {hint[0]!r}?" if hint else (
                    f"configured: {', '.join(known)}" if known else "no channels are configured")
                self._add(source, target_loc + ("channel",), f"notify: unknown channel {target.channel!r} ({detail})")
            if target.template is not None:
                per_channel[target.channel] = self._template_ref(source, target_loc + ("template",), target.template,
                                                                 templates, default, spec.name)
            else:
                per_channel[target.channel] = rule_template
        dedup_key = self._jinja(spec.dedup.key or DEFAULT_DEDUP_KEY, source, loc + ("dedup", "key"), "dedup.key")
        if len(self.problems) > before:
            return None
        where = source.problem(loc, "")
        return matcher.CompiledRule(
            spec=spec, position=position, source=f"{where.path}:{where.line}", event_names=event_names,
            status_names=status_names,
            conditions=conditions, templates=per_channel, mentions=mentions, dedup_key=dedup_key,
            dedup_window=spec.dedup.window if spec.dedup.window is not None else self.config.dedup.window,
        )

    def _template_ref(self, source: Source, loc: Loc, ref: str | TemplateSpec | None,
                      templates: dict[str, CompiledTemplate], default: CompiledTemplate | None,
                      rule_name: str) -> CompiledTemplate | None:
        if ref is None:
            return default
        if isinstance(ref, TemplateSpec):
            return self._template(f"{rule_name} (inline)", ref, source, loc)
        if ref in self.broken_templates:
            return None
        if ref not in templates:
            hint = difflib.get_close_matches(ref, list(templates), n=1)
            self._add(source, loc, f"unknown template {ref!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            return None
        return templates[ref]

    def _check_names(self, source: Source, loc: Loc, values: list[str], known: Callable[[str], bool],
                     what: str, choices: list[str]) -> None:
        for i, value in enumerate(values):
            if matcher.is_glob(value) or known(value):
                continue
            hint = difflib.get_close_matches(value, choices, n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            item_loc = loc + (i,) if (loc + (i,)) in source.values else loc
            self._add(source, item_loc, f"match.{what}: unknown {what} {value!r}{suffix}")

    def _add(self, source: Source, loc: Loc, message: str) -> None:
        self.problems.append(source.problem(loc, message))
