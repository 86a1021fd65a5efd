"""Event files for `test` and `replay`: one JSON message per file, or JSON Lines (`FILE:LINE`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Input:
    label: str
    raw: Any = None  # a parsed JSON value (single-document files)
    text: str | None = None  # one JSON Lines line, still to be decoded
    error: str | None = None  # unreadable file or document


def read_inputs(name: str) -> Iterator[Input]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield Input(name, error=f"cannot read: {exc}")
        return
    label = "<stdin>" if name == "-" else name
    try:
        yield Input(label, raw=json.loads(text))
        return
    except json.JSONDecodeError as exc:
        whole_error = exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        yield Input(label, error="empty input")
        return
    if not whole_error.msg.startswith("Extra data") and len(lines) > 1 and not lines[0][1].strip().endswith("}"):
        yield Input(label, error=f"not JSON: {whole_error}")  # one broken multi-line document
        return
    for number, line in lines:
        yield Input(f"{label}:{number}", text=line)


def message_of(item: Input) -> str:
    """The message text of an input, for dead letters."""
    if item.text is not None:
        return item.text
    return json.dumps(item.raw, ensure_ascii=False)
