from __future__ import annotations

import enum
from typing import Protocol

RESERVATION_SECONDS = 120.0  # longer than any send with its timeouts; a crashed holder frees the key after it


class Reservation(enum.Enum):
    RESERVED = "reserved"  # ours now: send, then confirm or release
    DUPLICATE = "duplicate"  # already delivered within its window
    BUSY = "busy"  # another worker or replica is sending it right now: ask again shortly


class StateStore(Protocol):
    def reserve(self, key: str, token: str, seconds: float = RESERVATION_SECONDS) -> Reservation: ...

    def confirm(self, key: str, token: str, window: float) -> None: ...

    def release(self, key: str, token: str) -> None: ...

    def cleanup(self) -> int: ...

    def close(self) -> None: ...
