"""EventBridge-style content patterns, compiled once into small predicate objects.

A pattern object mirrors the structure of the JSON it is applied to. A leaf is a value or a list of
alternatives (any of); a value means equality, where a number also equals the same numeric string.
Operator objects: prefix, suffix, wildcard, equals-ignore-case, anything-but, numeric, exists, cidr,
and our additions regex and glob. `$or` takes a list of patterns. Keys may be dotted paths. When the
event holds an array, the leaf matches if any element matches (EventBridge semantics).

Every node can also `explain` why it did not match, for `dwbot test --explain`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

OPERATORS = frozenset({"prefix", "suffix", "wildcard", "equals-ignore-case", "anything-but", "numeric",
                       "exists", "cidr", "regex", "glob"})
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, "=": lambda a, b: a == b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "!=": lambda a, b: a != b,
}
_MISSING = object()


class PatternError(ValueError):
    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def as_number(value: Any) -> int | float | None:
    """A number, or a string holding one; bools are not numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return number if number == number and abs(number) != float("inf") else None
    return None


# ---------------------------------------------------------------------------------------- leaves

Test = Callable[[Any], bool]


def _equals(expected: Any) -> Test:
    number = as_number(expected)
    if isinstance(expected, bool) or expected is None:
        return lambda v: v is expected
    if number is not None:
        text = expected if isinstance(expected, str) else None

        def equal_number(v: Any) -> bool:
            kind = v.__class__
            if kind is int or kind is float:  # the usual case: a JSON number (bool's class is bool)
                return v == number
            if v == text:
                return True
            got = as_number(v)
            return got is not None and got == number

        return equal_number
    return lambda v: v == expected


def _string_op(name: str, arg: Any, loc: tuple) -> Test:
    """prefix/suffix/equals-ignore-case/wildcard/regex/glob, shared by anything-but."""
    if name in ("prefix", "suffix") and isinstance(arg, dict):
        if set(arg) != {"equals-ignore-case"} or not isinstance(arg["equals-ignore-case"], str):
            raise PatternError(loc, f"{name} takes a string or {{equals-ignore-case: STRING}}")
        folded = arg["equals-ignore-case"].casefold()
        if name == "prefix":
            return lambda v: isinstance(v, str) and v.casefold().startswith(folded)
        return lambda v: isinstance(v, str) and v.casefold().endswith(folded)
    if not isinstance(arg, str):
        raise PatternError(loc, f"{name} takes a string, not {_show(arg)}")
    if name == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(arg)
    if name == "suffix":
        return lambda v: isinstance(v, str) and v.endswith(arg)
    if name == "equals-ignore-case":
        folded = arg.casefold()
        return lambda v: isinstance(v, str) and v.casefold() == folded
    if name == "wildcard":
        parts = re.split(r"(?<!\\)\*", arg)
        regex = re.compile(".*".join(re.escape(p.replace("\\*", "*")) for p in parts), re.DOTALL)
        return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None
    if name == "regex":
        try:
            regex = re.compile(arg)
        except re.error as exc:
            raise PatternError(loc, f"invalid regex {arg!r}: {exc}") from None
        return lambda v: isinstance(v, str | int | float) and not isinstance(v, bool) and \
            regex.search(str(v)) is not None
    if name == "glob":
        regex = re.compile(fnmatch.translate(arg))
        return lambda v: isinstance(v, str) and regex.match(v) is not None
    raise PatternError(loc, f"unknown operator {name!r}")


def _numeric(arg: Any, loc: tuple) -> Test:
    if not isinstance(arg, list) or not arg or len(arg) % 2 or len(arg) > 4:
        raise PatternError(loc, 'numeric takes [OP, N] or [OP, N, OP, N], e.g. [">", 0, "<=", 5]')
    checks = []
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            raise PatternError(loc, f"numeric: unknown comparison {op!r} (use one of {', '.join(_NUMERIC_OPS)})")
        number = as_number(bound)
        if number is None or isinstance(bound, str):
            raise PatternError(loc, f"numeric: {_show(bound)} is not a number")
        checks.append((_NUMERIC_OPS[op], number))

    def test(v: Any) -> bool:
        got = as_number(v)
        return got is not None and all(check(got, bound) for check, bound in checks)

    return test


def _cidr(arg: Any, loc: tuple) -> Test:
    try:
        network = ipaddress.ip_network(str(arg), strict=False)
    except ValueError as exc:
        raise PatternError(loc, f"invalid cidr {arg!r}: {exc}") from None

    def test(v: Any) -> bool:
        try:
            return isinstance(v, str) and ipaddress.ip_address(v) in network
        except ValueError:
            return False

    return test


def _anything_but(arg: Any, loc: tuple) -> Test:
    if isinstance(arg, dict):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise PatternError(loc, "anything-but takes a value, a list, or one of "
                                    "{prefix|suffix|equals-ignore-case|wildcard: …}")
        name, inner = next(iter(arg.items()))
        values = inner if isinstance(inner, list) else [inner]
        tests = [_string_op(name, x, loc) for x in values]
    else:
        values = arg if isinstance(arg, list) else [arg]
        for x in values:
            if isinstance(x, dict | list):
                raise PatternError(loc, f"anything-but: {_show(x)} is not a plain value")
        tests = [_equals(x) for x in values]
    return lambda v: not any(t(v) for t in tests)


class Leaf:
    """Alternatives for one field; `exists` alternatives decide what a missing field means."""

    __slots__ = ("tests", "if_missing", "if_present_any", "shown")

    def __init__(self, spec: Any, loc: tuple):
        self.shown = _show(spec)
        self.tests: list[Test] = []
        self.if_missing = False
        self.if_present_any = False
        for alternative in spec if isinstance(spec, list) else [spec]:
            self._add(alternative, loc)

    def _add(self, alt: Any, loc: tuple) -> None:
        if isinstance(alt, list):
            raise PatternError(loc, "a list of alternatives cannot contain another list")
        if not isinstance(alt, dict):
            self.tests.append(_equals(alt))
            return
        unknown = sorted(set(alt) - OPERATORS)
        if unknown:
            raise PatternError(loc, f"unknown pattern operator {unknown[0]!r} (operators: {', '.join(sorted(OPERATORS))})")
        if not alt:
            raise PatternError(loc, "empty operator object")
        ops = []
        for name, arg in alt.items():
            if name == "exists":
                if not isinstance(arg, bool):
                    raise PatternError(loc, "exists takes true or false")
                if len(alt) > 1:
                    raise PatternError(loc, "exists cannot be combined with other operators in one object")
                if arg:
                    self.if_present_any = True
                else:
                    self.if_missing = True
                return
            if name == "numeric":
                ops.append(_numeric(arg, loc))
            elif name == "anything-but":
                ops.append(_anything_but(arg, loc))
            elif name == "cidr":
                ops.append(_cidr(arg, loc))
            else:
                ops.append(_string_op(name, arg, loc))
        self.tests.append(ops[0] if len(ops) == 1 else (lambda v, ops=ops: all(op(v) for op in ops)))

    def test(self, value: Any) -> bool:
        if value is _MISSING:
            return self.if_missing
        if self.if_present_any:
            return True
        if isinstance(value, list):
            return any(t(item) for item in value for t in self.tests)
        for t in self.tests:
            if t(value):
                return True
        return False


# --------------------------------------------------------------------------------------- objects


def _lookup(obj: Any, key: str, path: tuple[str, ...]) -> Any:
    if not isinstance(obj, dict):
        return _MISSING
    if key in obj:
        return obj[key]
    if len(path) == 1:
        return _MISSING
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


class ObjectPattern:
    """All fields must match (AND); every `$or` group needs one of its patterns to match."""

    __slots__ = ("fields", "ors", "prefix")

    def __init__(self, spec: dict, loc: tuple, prefix: str = ""):
        self.prefix = prefix
        self.fields: list[tuple[str, tuple[str, ...], str, Leaf | ObjectPattern]] = []
        self.ors: list[list[ObjectPattern]] = []
        errors: list[PatternError] = []
        for key, sub in spec.items():
            try:
                self._add(key, sub, loc + (key,))
            except PatternError as exc:
                errors.append(exc)
            except _Errors as exc:
                errors.extend(exc.errors)
        if errors:
            raise _Errors(errors)

    def _add(self, key: Any, sub: Any, loc: tuple) -> None:
        if key == "$or":
            if not isinstance(sub, list) or not sub or not all(isinstance(p, dict) for p in sub):
                raise PatternError(loc, "$or takes a list of patterns (objects)")
            self.ors.append([ObjectPattern(p, loc + (i,), self.prefix) for i, p in enumerate(sub)])
            return
        key = str(key)
        display = f"{self.prefix}{key}"
        path = tuple(key.split("."))
        if isinstance(sub, dict) and sub and not (set(sub) & OPERATORS):
            self.fields.append((key, path, display, ObjectPattern(sub, loc, display + ".")))
        elif isinstance(sub, dict) and set(sub) - OPERATORS and set(sub) & OPERATORS:
            unknown = sorted(set(sub) - OPERATORS)
            raise PatternError(loc, f"unknown pattern operator {unknown[0]!r} beside "
                                    f"{sorted(set(sub) & OPERATORS)[0]!r}")
        else:
            self.fields.append((key, path, display, Leaf(sub, loc)))

    def test(self, obj: Any) -> bool:
        for key, path, _display, sub in self.fields:
            value = _lookup(obj, key, path)
            if isinstance(sub, ObjectPattern):
                if not isinstance(value, dict) or not sub.test(value):
                    return False
            elif not sub.test(value):
                return False
        return all(any(p.test(obj) for p in group) for group in self.ors)

    def explain(self, obj: Any) -> str | None:
        """None if it matches, else the first failing condition."""
        for key, path, display, sub in self.fields:
            value = _lookup(obj, key, path)
            if isinstance(sub, ObjectPattern):
                if not isinstance(value, dict):
                    return f"{display}: {'missing' if value is _MISSING else _show(value)} is not an object"
                reason = sub.explain(value)
                if reason:
                    return reason
            elif not sub.test(value):
                if value is _MISSING:
                    return f"{display}: missing (pattern {sub.shown})"
                return f"{display}: {_show(value)} does not match {sub.shown}"
        for group in self.ors:
            if not any(p.test(obj) for p in group):
                reasons = "; ".join(filter(None, (p.explain(obj) for p in group)))
                return f"$or: no alternative matched ({reasons})"
        return None


class _Errors(Exception):
    def __init__(self, errors: list[PatternError]):
        self.errors = errors


def compile_pattern(spec: Any, loc: tuple, prefix: str = "") -> tuple[ObjectPattern | None, list[PatternError]]:
    """Compile a pattern; returns (pattern, []) or (None, every error found)."""
    if not isinstance(spec, dict):
        return None, [PatternError(loc, "a pattern must be an object (mapping of field -> condition)")]
    try:
        return ObjectPattern(spec, loc, prefix), []
    except _Errors as exc:
        return None, exc.errors
    except PatternError as exc:
        return None, [exc]
