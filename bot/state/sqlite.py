from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from bot.clock import Clock
from bot.state.base import RESERVATION_SECONDS, Reservation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup (
    key     TEXT PRIMARY KEY,
    done    INTEGER NOT NULL,
    token   TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dedup_expires ON dedup (expires);
"""


class SqliteStore:
    """Dedup state in SQLite (WAL). Each operation is one transaction; `BEGIN IMMEDIATE` takes the
    write lock first, so reserve's check-then-insert is atomic across threads and processes."""

    CLEANUP_EVERY = 500  # reservations between sweeps of expired keys

    def __init__(self, path: str, clock: Clock):
        self.clock = clock
        if path not in ("", ":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path or ":memory:", timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()  # one connection, shared by the delivery workers
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self._db.executescript(_SCHEMA)
        self._reservations = 0

    def _transaction(self, fn):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def reserve(self, key: str, token: str, seconds: float = RESERVATION_SECONDS) -> Reservation:
        now = self.clock.wall()

        def work(db: sqlite3.Connection) -> Reservation:
            row = db.execute("SELECT done, expires FROM dedup WHERE key = ?", (key,)).fetchone()
            if row and row[1] > now:
                return Reservation.DUPLICATE if row[0] else Reservation.BUSY
            db.execute("INSERT OR REPLACE INTO dedup (key, done, token, expires) VALUES (?, 0, ?, ?)",
                       (key, token, now + seconds))
            return Reservation.RESERVED

        result = self._transaction(work)
        self._reservations += 1
        if self._reservations % self.CLEANUP_EVERY == 0:
            self.cleanup()
        return result

    def confirm(self, key: str, token: str, window: float) -> None:
        expires = self.clock.wall() + window
        self._transaction(lambda db: db.execute(
            "INSERT OR REPLACE INTO dedup (key, done, token, expires) VALUES (?, 1, ?, ?)", (key, token, expires)))

    def release(self, key: str, token: str) -> None:
        self._transaction(lambda db: db.execute(
            "DELETE FROM dedup WHERE key = ? AND token = ? AND done = 0", (key, token)))

    def cleanup(self) -> int:
        now = self.clock.wall()
        return self._transaction(lambda db: db.execute("DELETE FROM dedup WHERE expires <= ?", (now,)).rowcount)

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone() == (1,)

    def close(self) -> None:
        with self._lock:
            self._db.close()
