"""YAML -> plain Python values plus the position of every key and value.

PyYAML's constructors drop positions, so we compose the node tree and build the values ourselves:
every error later found by validation (pydantic `loc` paths, our own checks) maps back to the exact
`LINE:COL` of the offending key or value. `${NAME}` / `${NAME:-default}` are replaced from the
environment in string scalars here, where the position is still known.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Problem

Loc = tuple[str | int, ...]

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Source:
    """A loaded YAML document: its value, and where each path of it stands in the file."""

    path: str
    value: Any
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    block_scalars: set[Loc] = field(default_factory=set)  # `|` / `>` values: text starts a line below

    def text_problem(self, loc: Loc, line_in_text: int, message: str) -> Problem:
        """A problem at line `line_in_text` (1-based) inside the string value at `loc`."""
        line, col = self.values.get(loc, (1, 1))
        if loc in self.block_scalars:
            return Problem(self.path, line + line_in_text, 1, message)
        return Problem(self.path, line + line_in_text - 1, col if line_in_text == 1 else 1, message)

    def problem(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A problem at `loc`, or at the nearest enclosing path that has a position."""
        table = self.keys if at_key else self.values
        for end in range(len(loc), -1, -1):
            prefix = tuple(loc[:end])
            pos = table.get(prefix) or self.values.get(prefix)
            if pos:
                return Problem(self.path, pos[0], pos[1], message)
        return Problem(self.path, 1, 1, message)


def load(path: str | Path, text: str | None = None, *, env: Mapping[str, str] | None = None,
         interpolate: bool = True, display: str | None = None) -> tuple[Source, list[Problem]]:
    """Load one YAML file. Problems (syntax, duplicate keys, unset variables) are returned, not raised."""
    display = display or str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return Source(display, None), [Problem(display, 0, 0, f"cannot read: {exc}")]
    source = Source(display, None)
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return source, [Problem(display, line, col, f"YAML syntax error: {reason}")]
    except yaml.YAMLError as exc:
        return source, [Problem(display, 1, 1, f"YAML syntax error: {exc}")]
    builder = _Builder(source, problems, os.environ if env is None else env, interpolate)
    source.value = builder.build(node, ()) if node is not None else None
    return source, problems


class _Builder:
    def __init__(self, source: Source, problems: list[Problem], env: Mapping[str, str], interpolate: bool):
        self.source = source
        self.problems = problems
        self.env = env
        self.interpolate = interpolate
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.source.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)  # YAML merge keys (<<)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if isinstance(key, int | float | bool) or key is None:
                    key = str(key).lower() if isinstance(key, bool) or key is None else str(key)
                if not isinstance(key, str):
                    self._problem(key_node, "mapping keys must be strings")
                    continue
                if key in result:
                    self._problem(key_node, f"duplicate key {key!r}")
                self.source.keys[loc + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.build(value_node, loc + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        if node.style in ("|", ">"):
            self.source.block_scalars.add(loc)
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str) and self.interpolate and "$" in value:
            value = self._substitute(value, node)
        return value

    def _substitute(self, text: str, node: yaml.Node) -> str:
        def replace(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    self._problem(node, f"environment variable {name} is not set (use ${{{name}:-default}} "
                                        "for a default)")
                    return ""
                return default
            return value

        return _ENV.sub(replace, text)

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.source.path, node.start_mark.line + 1, node.start_mark.column + 1, message))
