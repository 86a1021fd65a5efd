from __future__ import annotations

import threading

from bot.clock import Clock
from bot.state.base import RESERVATION_SECONDS, Reservation


class MemoryStore:
    """Dedup state in a dict: key -> (done, token, expires at wall time)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[bool, str, float]] = {}

    def reserve(self, key: str, token: str, seconds: float = RESERVATION_SECONDS) -> Reservation:
        now = self.clock.wall()
        with self._lock:
            entry = self._keys.get(key)
            if entry and entry[2] > now:
                return Reservation.DUPLICATE if entry[0] else Reservation.BUSY
            self._keys[key] = (False, token, now + seconds)
            return Reservation.RESERVED

    def confirm(self, key: str, token: str, window: float) -> None:
        with self._lock:
            self._keys[key] = (True, token, self.clock.wall() + window)

    def release(self, key: str, token: str) -> None:
        with self._lock:
            entry = self._keys.get(key)
            if entry and not entry[0] and entry[1] == token:
                del self._keys[key]

    def cleanup(self) -> int:
        now = self.clock.wall()
        with self._lock:
            expired = [k for k, (_, _, expires) in self._keys.items() if expires <= now]
            for key in expired:
                del self._keys[key]
        return len(expired)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass
