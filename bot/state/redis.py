"""Dedup state in Redis, shared by several `dwbot run` replicas.

reserve: SET key "r:TOKEN" NX PX ttl — exactly one worker across all replicas wins a free key.
confirm: SET key "d:TOKEN" PX window — delivered; the key lives for the dedup window.
release: a Lua script deletes the key only if it still holds our reservation, so a worker can never
release someone else's reservation or a confirmed key.
"""

from __future__ import annotations

import os
import urllib.parse

import redis

from bot.clock import Clock
from bot.state.base import RESERVATION_SECONDS, Reservation

PREFIX = "dwbot:dedup:"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore:
    def __init__(self, url: str, clock: Clock):
        self.clock = clock  # Redis expires keys on its own clock; ours is not used here
        password = None
        if not urllib.parse.urlsplit(url).password:
            password = os.environ.get("DWBOT_REDIS_PASSWORD") or None
        self.client = redis.Redis.from_url(url, password=password, socket_timeout=5, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._release = self.client.register_script(_RELEASE)

    def reserve(self, key: str, token: str, seconds: float = RESERVATION_SECONDS) -> Reservation:
        name = PREFIX + key
        for _ in range(3):  # the holder's key may expire between our SET and GET: ask again
            if self.client.set(name, "r:" + token, nx=True, px=max(1, int(seconds * 1000))):
                return Reservation.RESERVED
            value = self.client.get(name)
            if value is not None:
                return Reservation.DUPLICATE if value.startswith(b"d:") else Reservation.BUSY
        return Reservation.BUSY

    def confirm(self, key: str, token: str, window: float) -> None:
        self.client.set(PREFIX + key, "d:" + token, px=max(1, int(window * 1000)))

    def release(self, key: str, token: str) -> None:
        self._release(keys=[PREFIX + key], args=["r:" + token])

    def cleanup(self) -> int:
        return 0  # every key carries its TTL: Redis removes them

    def ping(self) -> bool:
        return bool(self.client.ping())

    def close(self) -> None:
        self.client.close()
