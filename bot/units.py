"""Small value types written as text in YAML: durations (`30m`, `1h30m`) and rates (`20/min`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """`90s`, `30m`, `1h30m`, `7d`, or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use a number with a unit such as 30s, 10m, 24h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return float(value)
    text = str(value).strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {value!r}: use a number with a unit such as 30s, 10m, 24h or 7d")
    return total


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$",
                    "description": "duration such as 30s, 10m, 1h30m, 24h, 7d (a number means seconds)"}),
]


@dataclass(frozen=True, slots=True)
class Rate:
    count: float
    per_seconds: float

    def __str__(self) -> str:
        unit = {1: "s", 60: "min", 3600: "h"}.get(int(self.per_seconds), f"{self.per_seconds:g}s")
        return f"{self.count:g}/{unit}"


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(value: Any) -> Rate:
    if isinstance(value, Rate):
        return value
    match = _RATE.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"invalid rate {value!r}: use N/s, N/min or N/h, e.g. 20/min")
    return Rate(float(match.group(1)), _RATE_UNITS[match.group(2)])


RateLimit = Annotated[
    Rate,
    BeforeValidator(parse_rate),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?/(s|min|h)$",
                    "description": "messages per time unit, e.g. 20/min or 1/s"}),
]
