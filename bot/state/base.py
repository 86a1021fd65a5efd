from __future__ import annotations

import enum
from typing import Protocol

RESERVATION_SECONDS = 30.0  # default; the delivery engine passes connect + read timeout + 5 s


class Reservation(enum.Enum):
    RESERVED = "reserved"  # ours now: send, then confirm or release
    DUPLICATE = "duplicate"  # already delivered within its window
    BUSY = "busy"  # another worker or replica is sending it right now: ask again shortly


class StateStore(Protocol):
    def reserve(self, key: str, token: str, seconds: float = RESERVATION_SECONDS) -> Reservation: ...

    def confirm(self, key: str, token: str, window: float) -> None: ...

    def release(self, key: str, token: str) -> None: ...

    def cleanup(self) -> int: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...
