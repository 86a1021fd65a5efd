"""Dedup state: reserve a key before sending, confirm it after success (TTL = the dedup window),
release it on failure. Two workers never send the same key, and a failed send does not consume it.

    memory://          one process, lost on restart (tests, `dwbot test`-like runs)
    sqlite:///PATH     one host, survives restarts (the default: sqlite:///dwbot-state.db)
    redis://HOST:PORT/DB, rediss://…   shared by several replicas in one consumer group
"""

from __future__ import annotations

from bot.clock import SYSTEM, Clock
from bot.state.base import Reservation, StateStore
from bot.state.memory import MemoryStore
from bot.state.sqlite import SqliteStore


def open_store(url: str, clock: Clock = SYSTEM) -> StateStore:
    if url.startswith("memory://"):
        return MemoryStore(clock)
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///"):], clock)
    if url.startswith(("redis://", "rediss://")):
        from bot.state.redis import RedisStore

        return RedisStore(url, clock)
    raise ValueError(f"unknown state store {url.split('://')[0]}:// (use memory://, sqlite:///PATH or redis://)")


__all__ = ["MemoryStore", "Reservation", "SqliteStore", "StateStore", "open_store"]
