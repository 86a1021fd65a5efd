"""Turn pydantic validation errors into `PATH:LINE:COL: message` problems.

pydantic's `loc` paths name union members and model names besides the keys of the document; we keep
only the parts that exist in the YAML value so that the position lookup finds the right node.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.errors import Problem
from bot.yamlsource import Loc, Source


def problems_from_pydantic(source: Source, exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    grouped: dict[tuple[Loc, bool], list[str]] = {}
    for error in exc.errors(include_url=False):
        loc, leaf_key = _document_loc(source.value, error["loc"])
        message, at_key = _message(error, loc, leaf_key, source.value, model)
        messages = grouped.setdefault((loc, at_key), [])
        if message not in messages:
            messages.append(message)
    problems = []
    for (loc, at_key), messages in grouped.items():
        where = ".".join(str(p) for p in loc) or "(top level)"
        problems.append(source.problem(loc, f"{where}: {' or '.join(messages)}", at_key=at_key))
    return problems


def _document_loc(value: Any, loc: tuple) -> tuple[Loc, str | None]:
    """Keep only loc parts that index into `value`; a missing last key is returned separately."""
    kept: list[str | int] = []
    current = value
    missing: str | None = None
    for part in loc:
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            kept.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            kept.append(part)
            current = current[part]
        elif isinstance(part, str) and isinstance(current, dict) and "[" not in part and "-" not in part:
            missing = part  # a key that should be there, or a union tag — decided by the caller
    return tuple(kept), missing


def _message(error: dict, loc: Loc, missing: str | None, value: Any, model: type[BaseModel]) -> tuple[str, bool]:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        allowed = _allowed_keys(model, loc[:-1], value)
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suffix = f" (did you mean {hint[0]!r}?)" if hint else (f" (allowed: {', '.join(allowed)})" if allowed else "")
        return f"unknown key {key!r}{suffix}", True
    if kind == "missing":
        return f"missing required key {missing or error['loc'][-1]!r}", False
    message = error["msg"]
    if kind in ("model_type", "dict_type"):
        message = f"expected a mapping, got {_type_name(error.get('input'))}"
    elif kind == "list_type":
        message = f"expected a list, got {_type_name(error.get('input'))}"
    elif kind == "string_type" and isinstance(error.get("input"), bool):
        message = f"{message} (YAML reads yes/no/on/off/true/false as booleans: quote the value)"
    elif kind in ("string_type", "bool_parsing", "bool_type", "int_parsing", "int_type"):
        message = f"{message} (got {error.get('input')!r})"
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return message, False


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _allowed_keys(model: type[BaseModel], loc: Loc, value: Any) -> list[str]:
    """Field names of the model found at `loc` (best effort, for `did you mean` hints)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside list[M], dict[str, M], M | None, ... if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
