"""Delivery over real HTTP to the local fakes: rate limits, retries, permanent errors, isolation,
signing, dedup state and dead letters. Time runs on a ScaledClock shared with the fakes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import sample
from fakes import DingTalkFake, Reply, SlackFake, WebhookFake, wait_for

from bot import deadletter
from bot.channels import Timeouts, dingtalk
from bot.clock import ScaledClock
from bot.config import load_config
from bot.deadletter import DeadLetterFile
from bot.delivery import Delivery, Result
from bot.pipeline import Pipeline
from bot.state import MemoryStore, Reservation, SqliteStore

RULES = """
rules:
  - name: to-ding
    match: {event: instance-status-changes, data: {nodeId: 1}}
    notify: [ding]
    template: {title: "msg {{ event.data.taskId }}", text: "instance {{ event.data.taskId }}"}
  - name: to-slack
    match: {event: instance-status-changes, data: {nodeId: 2}}
    notify: [slk]
    template: {title: "msg {{ event.data.taskId }}", text: "instance {{ event.data.taskId }}"}
  - name: to-hook
    match: {event: instance-status-changes, data: {nodeId: 3}}
    notify: [hook]
    template: {title: "msg {{ event.data.taskId }}", text: "instance {{ event.data.taskId }}"}
  - name: to-api
    match: {event: instance-status-changes, data: {nodeId: 4}}
    notify: [api]
    template: {title: "msg {{ event.data.taskId }}", text: "instance {{ event.data.taskId }}"}
"""


class Env:
    """A config pointing at the fakes, its pipeline, and a Delivery on the shared clock."""

    def __init__(self, tmp_path: Path, speed: float, *, ding_url: str, slack_url: str, hook_url: str,
                 api_url: str = "http://127.0.0.1:9/api/", secret: str = "", max_retry_time: str = "1h",
                 state: str = "memory://"):
        self.clock = ScaledClock(speed)
        self.tmp = tmp_path
        (tmp_path / "rules").mkdir(exist_ok=True)
        (tmp_path / "rules" / "r.yaml").write_text(RULES)
        config = {
            "channels": {
                "ding": {"type": "dingtalk", "url": ding_url, **({"secret": secret} if secret else {})},
                "slk": {"type": "slack", "url": slack_url},
                "hook": {"type": "webhook", "url": hook_url},
                "api": {"type": "slack", "token": "xoxb-test", "channel": "C0123ABC", "api_url": api_url},
            },
            "state": state, "dead_letter": {"file": str(tmp_path / "dead.jsonl")},
            "delivery": {"max_retry_time": max_retry_time}, "rules": ["rules/"],
        }
        (tmp_path / "bot.yaml").write_text(json.dumps(config))
        self.loaded = load_config(str(tmp_path / "bot.yaml"))
        self.pipeline = Pipeline.load(self.loaded)
        self.dead_letters = DeadLetterFile(str(tmp_path / "dead.jsonl"), self.loaded.redact)
        self.results: list[tuple[str, str, Result]] = []
        self._lock = threading.Lock()

    def delivery(self, store=None, timeouts: Timeouts | None = None) -> Delivery:
        self.store = store or MemoryStore(self.clock)
        return Delivery.build(self.loaded.config.channels, self.store, self.dead_letters, clock=self.clock,
                              max_retry_time=self.loaded.config.delivery.max_retry_time,
                              timeouts=timeouts or Timeouts(connect=2, read=5))

    def submit(self, delivery: Delivery, node: int, count: int, start: int = 0) -> None:
        for i in range(start, start + count):
            raw = sample("instance-status-failure-cloudevent.json")
            raw["id"] = f"evt-{node}-{i}"
            raw["data"].update(nodeId=node, taskId=i)
            for n in self.pipeline.notifications(self.pipeline.normalise(raw)):
                delivery.submit(n, self._done)

    def _done(self, n, result: Result) -> None:
        with self._lock:
            self.results.append((n.channel, n.body, result))

    def count(self, result: Result, channel: str | None = None) -> int:
        with self._lock:
            return sum(1 for c, _, r in self.results if r is result and (channel is None or c == channel))


@pytest.fixture
def fakes():
    ding, slack, hook = DingTalkFake(), SlackFake(), WebhookFake()
    yield ding, slack, hook
    for fake in (ding, slack, hook):
        fake.close()


def env_for(tmp_path, fakes, speed: float, **kw) -> Env:
    ding, slack, hook = fakes
    env = Env(tmp_path, speed, ding_url=kw.pop("ding_url", None) or ding.add_robot("tok", kw.get("secret") or None),
              slack_url=kw.pop("slack_url", None) or slack.add_hook("hooksecret"),
              hook_url=hook.url("/hook"), **kw)
    for fake in fakes:
        fake.clock = env.clock
    return env


def titles(messages) -> list[str]:
    return [body["markdown"]["title"] for _, body in messages]


def test_200_dingtalk_messages_in_order_without_ever_being_throttled(tmp_path, fakes):
    ding = fakes[0]
    env = env_for(tmp_path, fakes, speed=200)
    delivery = env.delivery()
    env.submit(delivery, node=1, count=200)
    assert delivery.wait_idle(3600)
    delivery.close()
    robot = ding.robots["tok"]
    assert env.count(Result.DELIVERED) == 200
    assert titles(robot.messages) == [f"msg {i}" for i in range(200)]  # order of arrival
    assert ding.rate_limited == 0  # never a 130101
    times = [t for t, _ in robot.messages]
    assert all(b - a >= 60 for a, b in zip(times, times[20:], strict=False))  # 20 per minute at most
    assert times[-1] - times[0] < 9 * 62.2 + 20  # ... and not much slower: 10 windows of 62.2 s (with margin)


def test_slack_429_retry_after_is_honoured(tmp_path, fakes):
    slack = fakes[1]
    env = env_for(tmp_path, fakes, speed=50)
    slack.script("hooksecret", Reply(429, "rate_limited", {"Retry-After": "3"}))
    delivery = env.delivery()
    env.submit(delivery, node=2, count=1)
    assert delivery.wait_idle(600)
    delivery.close()
    hits = [r for r in slack.requests if r.path.endswith("/hooksecret")]
    assert len(hits) == 2 and hits[1].at - hits[0].at >= 3.0
    assert env.count(Result.DELIVERED) == 1 and delivery.stats()["slk"].retries == 1


def test_slack_5xx_for_a_while_then_success_loses_nothing(tmp_path, fakes):
    slack = fakes[1]
    env = env_for(tmp_path, fakes, speed=200)
    slack.script("hooksecret", *[Reply(503, "<html><body>503 Service Unavailable</body></html>")] * 6,
                 Reply(500, "rollup_error"))
    delivery = env.delivery()
    env.submit(delivery, node=2, count=5)
    assert delivery.wait_idle(3600)
    delivery.close()
    assert [body["text"] for _, body in slack.messages["hooksecret"]] == [f"*msg {i}*\ninstance {i}" for i in range(5)]
    assert env.count(Result.DELIVERED) == 5 and env.count(Result.DEAD_LETTERED) == 0
    assert delivery.stats()["slk"].retries == 7
    gaps = [b.at - a.at for a, b in zip(slack.requests, slack.requests[1:], strict=False)][:7]
    assert gaps[5] > gaps[0] * 4  # exponential backoff


@pytest.mark.parametrize("case", ["security", "unknown-token", "no-service", "api-not-in-channel"])
def test_permanent_errors_are_dead_lettered_at_once(tmp_path, fakes, case):
    ding, slack, hook = fakes
    api = SlackFake()
    try:
        kw = {}
        if case == "unknown-token":
            kw["ding_url"] = ding.url("/robot/send?access_token=made-up")
        if case == "no-service":
            kw["slack_url"] = slack.url("/services/T000/B000/removed")
        env = env_for(tmp_path, fakes, speed=100, api_url=api.add_bot("xoxb-test", "C0OTHER"), **kw)
        api.clock = env.clock
        if case == "security":
            ding.set_always("tok", Reply(body={"errcode": 310000, "errmsg": "keywords not in content"}))
        delivery = env.delivery()
        node = {"security": 1, "unknown-token": 1, "no-service": 2, "api-not-in-channel": 4}[case]
        env.submit(delivery, node=node, count=1)
        assert delivery.wait_idle(600)
        delivery.close()
    finally:
        api.close()
    expected = {"security": "errcode 310000: keywords not in content", "unknown-token": "errcode 300005: token is not exist",
                "no-service": "HTTP 404: no_service", "api-not-in-channel": "HTTP 200: channel_not_found"}[case]
    assert env.count(Result.DELIVERED) == 0 and env.count(Result.DEAD_LETTERED) == 1
    [record] = deadletter.read(tmp_path / "dead.jsonl")
    assert expected in record["reason"] and record["attempts"] == 1
    assert record["dedup_key"] == f"{record['rule']}:acs.dataworks:evt-{node}-0"
    assert record["event"]["id"] == f"evt-{node}-0" and record["body"]
    assert "tok" not in json.dumps(record) or case == "unknown-token"


def test_a_down_chat_does_not_slow_the_others(tmp_path, fakes):
    ding, slack, _ = fakes
    env = env_for(tmp_path, fakes, speed=100)
    slack.set_always("hooksecret", Reply(503, "<html>down</html>"))
    delivery = env.delivery()
    env.submit(delivery, node=2, count=20)
    env.submit(delivery, node=1, count=40)
    assert wait_for(lambda: len(ding.robots["tok"].messages) == 40, timeout=30)
    times = [t - ding.robots["tok"].messages[0][0] for t, _ in ding.robots["tok"].messages]
    assert times[19] < 5  # the first 20 at once
    assert 61 <= times[20] < 70  # the next 20 one rate window later: full DingTalk rate
    assert env.count(Result.DELIVERED, "slk") == 0 and delivery.workers["slk"].pending() == 20
    delivery.close(abort=True)


def test_slow_chat_timeout_is_an_unknown_outcome_and_retried(tmp_path, fakes, caplog):
    hook = fakes[2]
    env = env_for(tmp_path, fakes, speed=10)
    hook.script("/hook", Reply(204, "", delay=10.0))  # 1 s real: longer than the 0.3 s read timeout
    delivery = env.delivery(timeouts=Timeouts(connect=1, read=0.3))
    env.submit(delivery, node=3, count=1)
    assert delivery.wait_idle(600)
    delivery.close()
    assert env.count(Result.DELIVERED) == 1 and delivery.stats()["hook"].unknown_outcomes == 1
    assert "it may be posted twice" in caplog.text
    keys = {key for _, _, key in hook.messages}
    assert keys == {"hook:to-hook:acs.dataworks:evt-3-0"}  # retries carry the same idempotency key


def test_gives_up_after_max_retry_time(tmp_path, fakes):
    hook = fakes[2]
    env = env_for(tmp_path, fakes, speed=200, max_retry_time="2m")
    hook.set_always("/hook", Reply(502, "<html>bad gateway</html>"))
    delivery = env.delivery()
    env.submit(delivery, node=3, count=1)
    assert delivery.wait_idle(3600)
    delivery.close()
    [record] = deadletter.read(tmp_path / "dead.jsonl")
    assert record["reason"].startswith("gave up after") and "HTTP 502" in record["reason"]
    assert 4 <= record["attempts"] <= 9


def test_dingtalk_rate_limit_answer_parks_the_robot(tmp_path, fakes):
    ding = fakes[0]
    env = env_for(tmp_path, fakes, speed=200)
    ding.script("tok", Reply(body={"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}))
    delivery = env.delivery()
    env.submit(delivery, node=1, count=2)
    assert delivery.wait_idle(3600)
    delivery.close()
    first, second = ding.requests[0].at, ding.requests[1].at
    assert second - first >= 60  # no hammering of a blocked robot
    assert titles(ding.robots["tok"].messages) == ["msg 0", "msg 1"]


def test_slack_web_api(tmp_path, fakes):
    api = SlackFake()
    try:
        env = env_for(tmp_path, fakes, speed=50, api_url=api.add_bot("xoxb-test", "C0123ABC"))
        api.clock = env.clock
        api.script("xoxb-test", Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "2"}))
        delivery = env.delivery()
        env.submit(delivery, node=4, count=2)
        assert delivery.wait_idle(600)
        delivery.close()
    finally:
        api.close()
    sent = api.messages["xoxb-test:C0123ABC"]
    assert [body["channel"] for _, body in sent] == ["C0123ABC", "C0123ABC"]
    assert [body["text"] for _, body in sent] == ["*msg 0*\ninstance 0", "*msg 1*\ninstance 1"]
    assert api.requests[1].at - api.requests[0].at >= 2.0


# ------------------------------------------------------------------------------------- signing


def test_signing_test_vector():
    raw = dingtalk.sign("SEC0123456789abcdef", "1700000000002")
    assert raw == "VGvd0brDJp/nMZtR+XnA3yBIlhowT+TwkRPua0q1/jg="
    url = dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", "SEC0123456789abcdef",
                              1700000000002)
    assert url == ("https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000002"
                   "&sign=VGvd0brDJp%2FnMZtR%2BXnA3yBIlhowT%2BTwkRPua0q1%2Fjg%3D")


@pytest.mark.parametrize("secret", ["SEC+/=abc+/==", "SECk+z/9=Q==", "SEC0123456789abcdef"])
def test_signed_requests_accepted_by_the_fake(tmp_path, fakes, secret):
    ding = fakes[0]
    env = env_for(tmp_path, fakes, speed=10, secret=secret)
    delivery = env.delivery()
    env.submit(delivery, node=1, count=3)
    assert delivery.wait_idle(600)
    delivery.close()
    assert env.count(Result.DELIVERED) == 3 and len(ding.robots["tok"].messages) == 3
    for request in ding.requests:  # a fresh signature per request, never piled-up parameters
        assert request.raw_query.count("timestamp=") == 1 and request.raw_query.count("sign=") == 1
    assert len({r.query["timestamp"][0] for r in ding.requests}) >= 1
    assert secret not in (tmp_path / "dead.jsonl").read_text() if (tmp_path / "dead.jsonl").exists() else True


def test_wrong_secret_is_permanent(tmp_path, fakes):
    ding = fakes[0]
    env = env_for(tmp_path, fakes, speed=10, ding_url=ding.add_robot("tok2", "SECright"), secret="SECwrong")
    delivery = env.delivery()
    env.submit(delivery, node=1, count=1)
    assert delivery.wait_idle(600)
    delivery.close()
    [record] = deadletter.read(tmp_path / "dead.jsonl")
    assert "errcode 310000: sign not match" in record["reason"]
    assert "SECwrong" not in json.dumps(record)


# ----------------------------------------------------------------------------------- the state


def test_a_delivered_key_is_not_sent_again_and_a_failed_one_is(tmp_path, fakes):
    slack = fakes[1]
    env = env_for(tmp_path, fakes, speed=50, state=f"sqlite:///{tmp_path}/state.db")
    store = SqliteStore(str(tmp_path / "state.db"), env.clock)
    slack.script("hooksecret", Reply(404, "no_service"))
    delivery = env.delivery(store)
    env.submit(delivery, node=2, count=2)
    env.submit(delivery, node=2, count=2)  # the same events again
    assert delivery.wait_idle(600)
    delivery.close()
    assert (env.count(Result.DEAD_LETTERED), env.count(Result.DELIVERED), env.count(Result.DUPLICATE)) == (1, 2, 1)
    assert [b["text"] for _, b in slack.messages["hooksecret"]] == ["*msg 1*\ninstance 1", "*msg 0*\ninstance 0"]


def test_memory_store_concurrent_reservations_one_winner():
    """(SQLite and Redis: threads and processes at once, in test_redis.py.)"""
    store = MemoryStore(ScaledClock(1))
    wins: list[str] = []
    barrier = threading.Barrier(16)

    def contend(worker: int) -> None:
        barrier.wait()
        for key in range(50):
            if store.reserve(f"k{key}", f"w{worker}") is Reservation.RESERVED:
                wins.append(f"k{key}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == sorted(f"k{k}" for k in range(50))  # exactly one winner per key


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_semantics(tmp_path, kind):
    clock = ScaledClock(1000)
    store = MemoryStore(clock) if kind == "memory" else SqliteStore(str(tmp_path / "s.db"), clock)
    assert store.reserve("k", "a") is Reservation.RESERVED
    assert store.reserve("k", "b") is Reservation.BUSY
    store.release("k", "b")  # not b's to release
    assert store.reserve("k", "b") is Reservation.BUSY
    store.release("k", "a")
    assert store.reserve("k", "b") is Reservation.RESERVED
    store.confirm("k", "b", window=60)
    assert store.reserve("k", "c") is Reservation.DUPLICATE
    store.release("k", "b")  # a confirmed key is not released
    assert store.reserve("k", "c") is Reservation.DUPLICATE
    assert wait_for(lambda: store.reserve("k", "c") is Reservation.RESERVED, timeout=5)  # the window expired
    store.confirm("old", "x", window=0.001)
    assert wait_for(lambda: store.cleanup() >= 1, timeout=5)


def test_sqlite_state_survives_restart(tmp_path):
    clock = ScaledClock(1)
    store = SqliteStore(str(tmp_path / "s.db"), clock)
    store.confirm("k", "a", window=3600)
    store.close()
    assert SqliteStore(str(tmp_path / "s.db"), clock).reserve("k", "b") is Reservation.DUPLICATE
