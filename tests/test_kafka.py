"""`dwbot run` against a real Kafka-protocol broker: delivery, duplicates, invalid messages, commits,
SIGTERM, kill -9, chat outage, broker freeze, rebalances, and startup errors."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from conftest import ROOT, SAMPLES
from fakes import DingTalkFake, Reply, SlackFake, WebhookFake, wait_for
from kafka_support import BotProcess, Topic, event, write_config

from bot import deadletter
from bot.config import load_config
from bot.kafka import consumer_config

HOOK_RULES = "rules:\n  - {name: r, match: {event: instance-status-changes}, notify: [hook]}\n"


def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def hook_channel(hook: WebhookFake) -> dict:
    return {"hook": {"type": "webhook", "url": hook.url("/h")}}


def delivered_keys(hook: WebhookFake) -> Counter:
    with hook.lock:
        return Counter(key for _, _, key in hook.messages)


def expect_committed(topic: Topic, group_id: str, timeout: float = 20) -> bool:
    return wait_for(lambda: topic.committed(group_id) == topic.counts, timeout=timeout, interval=0.2)


def test_samples_to_chats_with_duplicate_and_malformed_messages(broker, tmp_path):
    topic = Topic(broker, 3)
    samples = sorted(SAMPLES.glob("*.json"))
    values = [p.read_bytes() for p in samples]
    values.append((SAMPLES / "instance-status-failure-cloudevent.json").read_bytes())  # redelivered duplicate
    malformed = [b"{not json", b"\xff\xfe\x00", b'{"hello": "world"}', b"[1,2,3]"]
    topic.produce(values[:12])
    topic.produce(malformed, key=b"k1", partition=1)
    topic.produce(values[12:])
    with DingTalkFake() as ding, SlackFake() as slack:
        group_id = group()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, group_id, {
            "data-team-dingtalk": {"type": "dingtalk", "url": ding.add_robot("tok", "SECkafka+/="),
                                   "secret": "SECkafka+/="},
            "oncall-slack": {"type": "slack", "url": slack.add_hook("hooksecret")},
        }, rules=(ROOT / "rules" / "instances.yaml").read_text(),
            extra={"workspaces": {"102345": "fin_dw_prod", "208812": "growth_ads"}})
        # the shipped templates live in another file: use the whole rules/ directory
        data = json.loads(config.read_text())
        data["rules"] = [str(ROOT / "rules")]
        data["dead_letter"]["topic"] = f"{topic.name}-dead"
        config.write_text(json.dumps(data))
        bot = BotProcess(config)
        try:
            # shipped rules on the samples: 7 DingTalk and 7 Slack messages (see test_shipped_rules)
            assert wait_for(lambda: len(ding.robots["tok"].messages) == 7 and
                            len(slack.messages.get("hooksecret", [])) == 7, timeout=60), bot.text()[-3000:]
            assert expect_committed(topic, group_id), (topic.committed(group_id), topic.counts)
            time.sleep(1)  # nothing more arrives: the duplicate was suppressed
            assert len(ding.robots["tok"].messages) == 7 and len(slack.messages["hooksecret"]) == 7
            titles = [body["markdown"]["title"] for _, body in ding.robots["tok"].messages]
            assert titles.count("[fin_dw_prod] instance 523536569736 failed") == 1
            assert bot.terminate() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    records = deadletter.read(tmp_path / "dead.jsonl")
    assert sorted(r["offset"] for r in records if r["kind"] == "invalid-message") == [4, 5, 6, 7]  # after 4 samples
    assert {r["partition"] for r in records} == {1}
    assert records[1]["message"] == {"base64": "//4A"}
    log = bot.text()
    assert f"invalid message at {topic.name}[1]@4: not JSON" in log
    assert "SECkafka" not in log and "hooksecret" not in log
    # the dead-letter topic got the original messages with key and reason headers
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group(), "auto.offset.reset": "earliest"})
    dead_topic = consumer.list_topics(f"{topic.name}-dead", timeout=10).topics[f"{topic.name}-dead"]
    consumer.assign([TopicPartition(f"{topic.name}-dead", p, OFFSET_BEGINNING) for p in dead_topic.partitions])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 4 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got.append(message)
    consumer.close()
    assert sorted(m.value() for m in got) == sorted(malformed)
    headers = dict(got[0].headers())
    assert got[0].key() == b"k1" and headers["dwbot-topic"] == topic.name.encode()
    assert headers["dwbot-partition"] == b"1" and headers["dwbot-reason"]


def test_kill_9_loses_nothing(broker, tmp_path):
    """2,000 matching events; the bot is killed with SIGKILL twice at random moments and restarted."""
    topic = Topic(broker, 4)
    total = 2000
    topic.produce([event(i) for i in range(total)])
    rng = random.Random()
    with WebhookFake() as hook:
        group_id = group()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, group_id, hook_channel(hook),
                              rules=HOOK_RULES)
        kills = []
        for _ in range(2):
            bot = BotProcess(config)
            target = len(hook.messages) + rng.randint(50, 500)
            assert wait_for(lambda target=target: len(hook.messages) >= target, timeout=60), bot.text()[-2000:]
            bot.kill()
            kills.append(len(hook.messages))
        bot = BotProcess(config)
        try:
            assert wait_for(lambda: len(delivered_keys(hook)) == total, timeout=120), bot.text()[-2000:]
            assert expect_committed(topic, group_id)
            assert bot.terminate() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    keys = delivered_keys(hook)
    duplicates = sum(n - 1 for n in keys.values())
    print(f"\nkill -9 at {kills} deliveries; duplicates: {duplicates} (one webhook channel: at most one "
          "notification is between send and confirm at a kill)")
    assert set(keys) == {f"hook:r:acs.dataworks:evt-{i}" for i in range(total)}  # nothing missing
    assert duplicates <= len(kills)


def test_chat_outage_pauses_consumption_and_loses_nothing(broker, tmp_path):
    topic = Topic(broker, 2)
    total = 600
    topic.produce([event(i) for i in range(total)])
    with WebhookFake() as hook:
        hook.set_always("/h", Reply(503, "<html>503 Service Unavailable</html>"))
        group_id = group()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, group_id, hook_channel(hook),
                              rules=HOOK_RULES, kafka={"max_in_flight": 50})
        bot = BotProcess(config)
        try:
            assert bot.wait_for_log("pausing consumption", timeout=30), bot.text()[-2000:]
            time.sleep(3)  # the outage goes on: consumption stays paused, memory stays flat
            rss = bot.rss_mb()
            assert all(c in (-1001, 0) for c in topic.committed(group_id))  # nothing handled: nothing moved
            hook.set_always("/h", None)  # the chat recovers
            assert wait_for(lambda: len(delivered_keys(hook)) == total, timeout=120), bot.text()[-2000:]
            assert expect_committed(topic, group_id)
            assert "resuming consumption" in bot.text()
            assert bot.terminate() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    assert rss < 200, f"RSS {rss:.0f} MB during the outage"
    assert max(delivered_keys(hook).values()) == 1


def test_broker_frozen_for_30s_then_back(broker, tmp_path):
    topic = Topic(broker, 2)
    with WebhookFake() as hook:
        group_id = group()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, group_id, hook_channel(hook),
                              rules=HOOK_RULES)
        bot = BotProcess(config)
        try:
            topic.produce([event(i) for i in range(100)])
            assert wait_for(lambda: len(hook.messages) == 100, timeout=60), bot.text()[-2000:]
            broker.freeze()
            try:
                time.sleep(30)
                assert bot.proc.poll() is None  # still running
            finally:
                broker.thaw()
            topic.produce([event(i) for i in range(100, 200)])
            assert wait_for(lambda: len(delivered_keys(hook)) == 200, timeout=90), bot.text()[-3000:]
            assert expect_committed(topic, group_id, timeout=30)
            assert bot.terminate() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    assert max(delivered_keys(hook).values()) == 1  # no duplicates
    assert len(hook.messages) == 200


def test_rebalance_to_a_second_consumer_posts_nothing_twice(broker, tmp_path):
    """Work of a revoked partition is consumed again by its new owner; the shared state dedups it."""
    topic = Topic(broker, 4)
    total = 800
    with WebhookFake() as hook:
        hook.set_always("/h", Reply(204, "", delay=0.005))  # slow enough that work is in flight
        group_id = group()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, group_id, hook_channel(hook),
                              rules=HOOK_RULES)
        first = BotProcess(config, "first.log")
        topic.produce([event(i) for i in range(total)])
        assert wait_for(lambda: len(hook.messages) >= 100, timeout=60)
        second = BotProcess(config, "second.log")
        try:
            assert second.wait_for_log("assigned events", timeout=30)
            assert wait_for(lambda: len(delivered_keys(hook)) == total, timeout=120)
            assert expect_committed(topic, group_id)
            assert first.terminate() == 0 and second.terminate() == 0
        finally:
            for bot in (first, second):
                if bot.proc.poll() is None:
                    bot.kill()
    assert "revoked" in first.text()
    assert max(delivered_keys(hook).values()) == 1


def test_sigterm_exits_0_within_the_shutdown_timeout_and_commits(broker, tmp_path):
    topic = Topic(broker, 1)
    topic.produce([event(i) for i in range(20)])
    with WebhookFake() as hook:
        hook.set_always("/h", Reply(204, "", delay=0.2))
        group_id = group()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, group_id, hook_channel(hook),
                              rules=HOOK_RULES, kafka={"shutdown_timeout": "3s"})
        bot = BotProcess(config)
        assert wait_for(lambda: len(hook.messages) >= 3, timeout=60)
        start = time.monotonic()
        code = bot.terminate(timeout=20)
        elapsed = time.monotonic() - start
        handled = len(hook.messages)
    assert code == 0 and elapsed < 3 + 5
    committed = topic.committed(group_id)[0]
    assert 3 <= committed <= handled  # what was handled is committed; nothing beyond it


def test_unreachable_broker_is_a_clear_error(tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text(json.dumps({"kafka": {"topics": ["t"], "startup_timeout": "3s",
                                            "config": {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}},
                                  "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/h"}},
                                  "state": "memory://", "rules": []}))
    start = time.monotonic()
    bot = BotProcess(config)
    code = bot.wait(timeout=30)
    assert code == 1 and time.monotonic() - start < 15
    assert ("cannot connect to Kafka at 127.0.0.1:1 within 3s: Connect to ipv4#127.0.0.1:1 failed: "
            "Connection refused") in bot.text()


def test_sasl_failure_is_a_clear_error(broker, tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text(json.dumps({"kafka": {"topics": ["t"], "startup_timeout": "3s",
                                            "config": {"bootstrap.servers": broker.bootstrap, "group.id": "g",
                                                       "security.protocol": "SASL_PLAINTEXT",
                                                       "sasl.mechanisms": "PLAIN", "sasl.username": "dwbot",
                                                       "sasl.password": "wrong-password-123"}},
                                  "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/h"}},
                                  "state": "memory://", "rules": []}))
    bot = BotProcess(config)
    assert bot.wait(timeout=30) == 1
    text = bot.text()
    assert f"cannot connect to Kafka at {broker.bootstrap} within 3s: SASL PLAIN mechanism handshake failed" in text
    assert "check sasl.username, sasl.password" in text
    assert "wrong-password-123" not in text


def test_alibaba_cloud_example_matches_the_official_demo(monkeypatch):
    env = {"KAFKA_TOPIC": "dw-openevent", "KAFKA_BOOTSTRAP_SERVERS": "a.alikafka.aliyuncs.com:9093",
           "KAFKA_USERNAME": "alikafka_user", "KAFKA_PASSWORD": "secret", "KAFKA_GROUP_ID": "CID_dwbot",
           "DINGTALK_WEBHOOK_URL": "https://oapi.dingtalk.com/robot/send?access_token=x",
           "DINGTALK_SECRET": "SECx", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loaded = load_config(str(ROOT / "examples" / "alibaba-cloud-kafka.yaml"))
    # kafka-confluent-python-demo/vpc-ssl (reference §4.2), with the integer fetch size bug left out
    demo = {"bootstrap.servers": "a.alikafka.aliyuncs.com:9093", "sasl.mechanisms": "PLAIN",
            "ssl.ca.location": "/etc/dwbot/mix-4096-ca-cert", "ssl.endpoint.identification.algorithm": "none",
            "security.protocol": "SASL_SSL", "sasl.username": "alikafka_user", "sasl.password": "secret",
            "group.id": "CID_dwbot", "auto.offset.reset": "latest"}
    ours = consumer_config(dict(loaded.config.kafka.config))
    assert {k: ours[k] for k in demo} == demo
    assert set(ours) - set(demo) == {"client.id", "enable.auto.commit", "enable.auto.offset.store"}
    assert ours["enable.auto.commit"] is False and ours["enable.auto.offset.store"] is False
    assert loaded.config.kafka.topics == ["dw-openevent"]
    assert "secret" in loaded.config.secrets()


@pytest.mark.parametrize("user", [{"enable.auto.commit": True}, {}])
def test_auto_commit_is_always_off(user):
    assert consumer_config(user)["enable.auto.commit"] is False
