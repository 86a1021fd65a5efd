"""Local HTTP fakes that answer like DingTalk, Slack and a generic webhook (reference
chat-platforms §7): same status codes, error bodies, rate limits and slowness. They run on
127.0.0.1 on an ephemeral port, record every request, and share the bot's clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.clock import SYSTEM, Clock


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    at: float  # fake clock time of arrival

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str | bytes | dict = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds of the fake's clock before answering ("slow")


class FakeServer:
    """Base: a threaded HTTP server calling `self.handle(request) -> Reply`."""

    def __init__(self, clock: Clock = SYSTEM):
        self.clock = clock
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                  parts.query, {k.lower(): v for k, v in self.headers.items()}, body, fake.clock.now())
                with fake.lock:
                    fake.requests.append(request)
                reply = fake.handle(request)
                if reply.delay:
                    fake.clock.sleep(reply.delay)
                payload = reply.body
                if isinstance(payload, dict):
                    payload = json.dumps(payload, ensure_ascii=False)
                data = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(reply.status)
                    content_type = "application/json;charset=utf-8" if isinstance(reply.body, dict) else "text/html"
                    self.send_header("Content-Type", reply.headers.get("Content-Type", content_type))
                    for key, value in reply.headers.items():
                        if key != "Content-Type":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): like a real server, we don't care

            do_POST = do_GET = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Scripted:
    """Per-destination queues of canned replies, consumed before the normal behaviour."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = {}
        self.always: dict[str, Reply] = {}

    def script(self, key: str, *replies: Reply) -> None:
        self.scripts.setdefault(key, deque()).extend(replies)

    def set_always(self, key: str, reply: Reply | None) -> None:
        if reply is None:
            self.always.pop(key, None)
        else:
            self.always[key] = reply

    def next_for(self, key: str) -> Reply | None:
        queue = self.scripts.get(key)
        if queue:
            return queue.popleft()
        return self.always.get(key)


# --------------------------------------------------------------------------------------- DingTalk


def dingtalk_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


@dataclass
class Robot:
    secret: str | None = None
    keywords: tuple[str, ...] = ()
    sent: deque = field(default_factory=deque)  # accepted-message times, last 60 s
    blocked_until: float = 0.0
    messages: list[tuple[float, dict]] = field(default_factory=list)


class DingTalkFake(FakeServer, Scripted):
    """POST /robot/send?access_token=T[&timestamp=&sign=] like the custom robot API (§7.1)."""

    LIMIT, WINDOW = 20, 60.0

    def __init__(self, clock: Clock = SYSTEM, penalty: float = 600.0):
        Scripted.__init__(self)
        self.robots: dict[str, Robot] = {}
        self.penalty = penalty
        self.rate_limited = 0
        FakeServer.__init__(self, clock)

    def add_robot(self, token: str, secret: str | None = None, keywords: tuple[str, ...] = ()) -> str:
        self.robots[token] = Robot(secret, keywords)
        return self.url(f"/robot/send?access_token={token}")

    def handle(self, r: Request) -> Reply:
        if r.method != "POST":
            return Reply(body={"errcode": 43002, "errmsg": "需要POST请求"})
        token = (r.query.get("access_token") or [""])[0]
        if not token:
            return Reply(body={"errcode": 40035, "errmsg": "缺少参数 access_token"})
        scripted = self.next_for(token)
        if scripted:
            return scripted
        robot = self.robots.get(token)
        if robot is None:
            return Reply(body={"errcode": 300005, "errmsg": "token is not exist"})
        if robot.secret:
            timestamp = (r.query.get("timestamp") or [""])[0]
            sign = (r.query.get("sign") or [""])[0]  # parse_qs decodes exactly once, like DingTalk
            if not timestamp.isdigit() or abs(self.clock.wall() * 1000 - int(timestamp)) > 3_600_000:
                return Reply(body={"errcode": 310000, "errmsg": "invalid timestamp"})
            if not hmac.compare_digest(sign, dingtalk_sign(robot.secret, timestamp)):
                return Reply(body={"errcode": 310000, "errmsg": "sign not match, more: "
                                                                "[https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
        if len(r.body) > 20000:
            return Reply(body={"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"})
        try:
            body = r.json()
        except ValueError:
            return Reply(body={"errcode": 300001, "errmsg": "param error"})
        if body.get("msgtype") not in ("text", "markdown", "link", "actionCard", "feedCard"):
            return Reply(body={"errcode": 400105, "errmsg": "不支持的消息类型"})
        if robot.keywords and not any(k in json.dumps(body, ensure_ascii=False) for k in robot.keywords):
            return Reply(body={"errcode": 310000, "errmsg": "keywords not in content"})
        now = self.clock.now()
        with self.lock:
            while robot.sent and robot.sent[0] <= now - self.WINDOW:
                robot.sent.popleft()
            if now < robot.blocked_until or len(robot.sent) >= self.LIMIT:
                if now >= robot.blocked_until:
                    robot.blocked_until = now + self.penalty
                self.rate_limited += 1
                return Reply(body={"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
            robot.sent.append(now)
            robot.messages.append((now, body))
        return Reply(body={"errcode": 0, "errmsg": "ok"})


# ------------------------------------------------------------------------------------------ Slack


class SlackFake(FakeServer, Scripted):
    """Incoming webhooks at /services/T000/B000/<secret> (§7.2) and chat.postMessage at
    /api/chat.postMessage (§7.3). More than 2 posts in any second to one destination: 429."""

    BURST, WINDOW = 2, 1.0

    def __init__(self, clock: Clock = SYSTEM):
        Scripted.__init__(self)
        self.hooks: set[str] = set()
        self.tokens: set[str] = set()
        self.channels: set[str] = set()
        self.messages: dict[str, list[tuple[float, dict]]] = {}
        self.rate_limited = 0
        self._recent: dict[str, deque] = {}
        self._ts = 1700000000.000100
        FakeServer.__init__(self, clock)

    def add_hook(self, secret: str) -> str:
        self.hooks.add(secret)
        return self.url(f"/services/T000/B000/{secret}")

    def add_bot(self, token: str, channel: str) -> str:
        self.tokens.add(token)
        self.channels.add(channel)
        return self.url("/api/")

    def _too_fast(self, key: str) -> bool:
        now = self.clock.now()
        with self.lock:
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - self.WINDOW:
                recent.popleft()
            if len(recent) >= self.BURST:
                self.rate_limited += 1
                return True
            recent.append(now)
        return False

    def handle(self, r: Request) -> Reply:
        if r.path.startswith("/api/"):
            return self._api(r)
        if r.method != "POST" or not r.path.startswith("/services/"):
            return Reply(404, "no_service")
        secret = r.path.rsplit("/", 1)[-1]
        scripted = self.next_for(secret)
        if scripted:
            return scripted
        if secret not in self.hooks:
            return Reply(404, "no_service")
        try:
            body = r.json()
        except ValueError:
            return Reply(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return Reply(400, "no_text")
        if self._too_fast(secret):
            return Reply(429, "rate_limited", {"Retry-After": "1"})
        with self.lock:
            self.messages.setdefault(secret, []).append((self.clock.now(), body))
        return Reply(200, "ok")

    def _api(self, r: Request) -> Reply:
        if not r.path.endswith("/chat.postMessage"):
            return Reply(200, {"ok": False, "error": "unknown_method"})
        auth = r.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return Reply(200, {"ok": False, "error": "not_authed"})
        token = auth[len("Bearer "):]
        scripted = self.next_for(token)
        if scripted:
            return scripted
        if token not in self.tokens:
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        body = r.json()
        channel = body.get("channel")
        if channel not in self.channels:
            return Reply(200, {"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return Reply(200, {"ok": False, "error": "no_text"})
        if self._too_fast(f"{token}:{channel}"):
            return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        with self.lock:
            self._ts += 0.0001
            ts = f"{self._ts:.6f}"
            self.messages.setdefault(f"{token}:{channel}", []).append((self.clock.now(), body))
        return Reply(200, {"ok": True, "channel": channel, "ts": ts,
                           "message": {"type": "message", "text": body.get("text", ""), "bot_id": "B0123", "ts": ts}})


# ---------------------------------------------------------------------------------------- webhook


class WebhookFake(FakeServer, Scripted):
    """2xx success; scripted 4xx/408/429/5xx; records the idempotency key of every request (§7.7)."""

    def __init__(self, clock: Clock = SYSTEM):
        Scripted.__init__(self)
        self.messages: list[tuple[float, dict, str]] = []
        FakeServer.__init__(self, clock)

    def handle(self, r: Request) -> Reply:
        reply = self.next_for(r.path) or Reply(204, "")
        if 200 <= reply.status < 300:  # a slow success is still a success: it counts when it answers
            with self.lock:
                self.messages.append((self.clock.now(), r.json(), r.headers.get("x-idempotency-key", "")))
        return reply


def wait_for(condition, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `condition()` for up to `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
