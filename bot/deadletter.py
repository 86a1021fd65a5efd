"""Dead letters: JSON Lines, one record per undeliverable notification or invalid message.

Each record is flushed and fsynced before the caller moves on (and before a Kafka offset may be
committed), so a record is never lost; secrets are replaced by `***`.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class DeadLetterFile:
    def __init__(self, path: str | None, redact: Callable[[str], str] = lambda text: text):
        self.path = Path(path) if path else None
        self.redact = redact
        self._lock = threading.Lock()
        self.count = 0
        self.mirror: Callable[[dict[str, Any]], None] | None = None  # e.g. the dead-letter topic
        self.on_write: Callable[[], None] | None = None  # e.g. a metrics counter

    def write(self, reason: str, *, mirror: bool = True, **fields: Any) -> dict[str, Any]:
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "reason": reason} | fields
        line = self.redact(json.dumps(record, ensure_ascii=False, default=str))
        with self._lock:
            self.count += 1
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
        written = json.loads(line)
        if self.on_write is not None:
            self.on_write()
        if mirror and self.mirror is not None:
            self.mirror(written)
        return written


def raw_message(value: bytes | str) -> dict[str, str]:
    """An invalid message as it arrived: text when it is UTF-8, else base64."""
    if isinstance(value, str):
        return {"text": value}
    try:
        return {"text": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def read(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
