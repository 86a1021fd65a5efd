"""Shared Redis state: store semantics, contention, and several `dwbot run` replicas in one group."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
from fakes import Reply, WebhookFake, wait_for
from kafka_support import BotProcess, RedisServer, Topic, event, write_config

from bot.clock import ScaledClock
from bot.state import Reservation, open_store

HOOK_RULES = "rules:\n  - {name: r, match: {event: instance-status-changes}, notify: [hook]}\n"


def keys(hook: WebhookFake) -> Counter:
    with hook.lock:
        return Counter(key for _, _, key in hook.messages)


_next_db = iter(range(1, 16))


def fresh_db(server) -> str:
    """A Redis database of its own: tests reuse event ids, and dedup must not span tests."""
    return server.url.rsplit("/", 1)[0] + f"/{next(_next_db)}"


def redis_config(tmp_path, broker, topic: Topic, hook: WebhookFake, redis_url: str, name: str = "bot.yaml"):
    config = write_config(tmp_path / name, broker, topic.name, f"g-{uuid.uuid4().hex[:8]}",
                          {"hook": {"type": "webhook", "url": hook.url("/h")}}, rules=HOOK_RULES)
    data = json.loads(config.read_text())
    data["state"] = redis_url
    config.write_text(json.dumps(data))
    return config, data["kafka"]["config"]["group.id"]


def test_redis_store_semantics(redis_server):
    store = open_store(redis_server.url, ScaledClock(1))
    key = f"k-{uuid.uuid4().hex}"
    assert store.reserve(key, "a", 30) is Reservation.RESERVED
    assert store.reserve(key, "b", 30) is Reservation.BUSY
    store.release(key, "b")  # not b's to release
    assert store.reserve(key, "b", 30) is Reservation.BUSY
    store.release(key, "a")
    assert store.reserve(key, "b", 30) is Reservation.RESERVED
    store.confirm(key, "b", window=0.5)
    assert store.reserve(key, "c", 30) is Reservation.DUPLICATE
    store.release(key, "b")  # a confirmed key is never released
    assert store.reserve(key, "c", 30) is Reservation.DUPLICATE
    assert wait_for(lambda: store.reserve(key, "c", 30) is Reservation.RESERVED, timeout=5)  # window over
    assert store.reserve(f"x-{uuid.uuid4().hex}", "t", 0.2) is Reservation.RESERVED
    assert 0 < store.client.pttl(f"dwbot:dedup:{key}") <= 30_000  # every key is bounded by a TTL
    store.close()


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_many_threads_and_processes_one_winner_per_key(redis_server, tmp_path, kind):
    url = redis_server.url if kind == "redis" else f"sqlite:///{tmp_path}/state.db"
    prefix = uuid.uuid4().hex
    script = f"""
import sys
from bot.clock import ScaledClock
from bot.state import Reservation, open_store
store = open_store({url!r}, ScaledClock(1))
for k in range(200):
    if store.reserve("{prefix}-%d" % k, sys.argv[1], 30) is Reservation.RESERVED:
        print("{prefix}-%d" % k)
"""
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    wins: list[str] = []
    lock = threading.Lock()

    def contend(i: int) -> None:
        store = open_store(url, ScaledClock(1))
        for k in range(200):
            if store.reserve(f"{prefix}-{k}", f"t{i}", 30) is Reservation.RESERVED:
                with lock:
                    wins.append(f"{prefix}-{k}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        wins += out.split()
    assert sorted(wins) == sorted(f"{prefix}-{k}" for k in range(200))


def test_two_replicas_deliver_every_notification_exactly_once(broker, redis_server, tmp_path):
    topic = Topic(broker, 4)
    total = 1000
    with WebhookFake() as hook:
        config, group_id = redis_config(tmp_path, broker, topic, hook, fresh_db(redis_server))
        first, second = BotProcess(config, "a.log"), BotProcess(config, "b.log")
        assert first.wait_for_log("assigned", 30) and second.wait_for_log("assigned", 30)
        topic.produce([event(i) for i in range(total)])
        assert wait_for(lambda: len(keys(hook)) == total, timeout=120)
        assert wait_for(lambda: topic.committed(group_id) == topic.counts, timeout=30)
        assert first.terminate() == 0 and second.terminate() == 0
    got = keys(hook)
    assert set(got) == {f"hook:r:acs.dataworks:evt-{i}" for i in range(total)} and max(got.values()) == 1
    assert "events-" in first.text() and "events-" in second.text()  # both had partitions


def test_killed_replica_partitions_taken_over_without_loss(broker, redis_server, tmp_path):
    topic = Topic(broker, 4)
    total = 2000
    with WebhookFake() as hook:
        hook.set_always("/h", Reply(204, "", delay=0.002))
        config, group_id = redis_config(tmp_path, broker, topic, hook, fresh_db(redis_server))
        first, second = BotProcess(config, "a.log"), BotProcess(config, "b.log")
        assert first.wait_for_log("assigned", 30) and second.wait_for_log("assigned", 30)
        topic.produce([event(i) for i in range(total)])
        assert wait_for(lambda: len(hook.messages) >= 400, timeout=60)
        first.kill()
        killed_at = len(hook.messages)
        delivered = wait_for(lambda: len(keys(hook)) == total, timeout=120)
        missing = sorted(int(k.rsplit("-", 1)[1]) for k in
                         {f"hook:r:acs.dataworks:evt-{i}" for i in range(total)} - set(keys(hook)))
        assert delivered, (f"missing {len(missing)}: {missing[:20]}; partitions "
                           f"{sorted({m % 4 for m in missing})}; committed {topic.committed(group_id)} "
                           f"of {topic.counts}")
        assert wait_for(lambda: topic.committed(group_id) == topic.counts, timeout=30)
        assert second.terminate() == 0
    got = keys(hook)
    duplicates = sum(n - 1 for n in got.values())
    print(f"\nreplica killed after {killed_at} deliveries; duplicates: {duplicates} (its one webhook worker "
          "had at most one message between send and confirm)")
    assert set(got) == {f"hook:r:acs.dataworks:evt-{i}" for i in range(total)}
    assert duplicates <= 1


def test_redis_restart_mid_stream(broker, tmp_path_factory, tmp_path):
    server = RedisServer(tmp_path_factory.mktemp("redis-restart"))
    topic = Topic(broker, 2)
    total = 300
    try:
        with WebhookFake() as hook:
            config, group_id = redis_config(tmp_path, broker, topic, hook, server.url)
            bot = BotProcess(config)
            assert bot.wait_for_log("assigned", 30)
            topic.produce([event(i) for i in range(100)])
            assert wait_for(lambda: len(keys(hook)) == 100, timeout=60)
            server.stop()
            topic.produce([event(i) for i in range(100, 200)])
            assert bot.wait_for_log("state store unavailable", 30)
            time.sleep(3)
            assert len(keys(hook)) == 100  # nothing posted without dedup protection
            server.start()
            topic.produce([event(i) for i in range(200, total)])
            assert wait_for(lambda: len(keys(hook)) == total, timeout=120), bot.text()[-2000:]
            assert wait_for(lambda: topic.committed(group_id) == topic.counts, timeout=30)
            assert bot.proc.poll() is None and bot.terminate() == 0
        got = keys(hook)
        assert set(got) == {f"hook:r:acs.dataworks:evt-{i}" for i in range(total)} and max(got.values()) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0"])
def test_unreachable_redis_is_an_error_not_a_post(url):
    store = open_store(url, ScaledClock(1))
    import redis

    with pytest.raises(redis.ConnectionError):
        store.reserve("k", "t")
