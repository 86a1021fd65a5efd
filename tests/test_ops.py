"""Operations: /healthz, /readyz, /metrics during a real run; hot reload; JSON logs."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import httpx
from fakes import WebhookFake, wait_for
from kafka_support import BotProcess, Topic, event, free_port, write_config
from prometheus_client.parser import text_string_to_metric_families

RULES = "rules:\n  - {name: r, match: {event: instance-status-changes, status: FAILURE}, notify: [hook]}\n"


def start(tmp_path: Path, broker, topic: Topic, hook: WebhookFake, *, rules: str = RULES, state: str | None = None,
          extra_args: dict | None = None) -> tuple[BotProcess, str, str, Path]:
    port = free_port()
    config = write_config(tmp_path / "bot.yaml", broker, topic.name, f"g-{uuid.uuid4().hex[:8]}",
                          {"hook": {"type": "webhook", "url": hook.url("/h")}}, rules=rules,
                          extra={"server": {"listen": f"127.0.0.1:{port}"}, **(extra_args or {})})
    if state:
        data = json.loads(config.read_text())
        data["state"] = state
        config.write_text(json.dumps(data))
    group = json.loads(config.read_text())["kafka"]["config"]["group.id"]
    return BotProcess(config), f"http://127.0.0.1:{port}", group, tmp_path / "bot-rules.yaml"


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_metrics_match_what_happened(broker, tmp_path):
    topic = Topic(broker, 2)
    with WebhookFake() as hook:
        bot, base, group, _ = start(tmp_path, broker, topic, hook)
        assert wait_for(lambda: up(base), timeout=30)
        ok = event(1)
        running = event(2, name="instance-status-running-cloudevent.json")
        topic.produce([ok, running, event(3), b"{broken", b"[]", ok])  # ok twice: a duplicate
        assert wait_for(lambda: len(hook.messages) == 2, timeout=60)
        assert wait_for(lambda: metric(scrape(base), "dwbot_events_total", result="matched") == 3, timeout=30)
        samples = scrape(base)
        assert metric(samples, "dwbot_events_total", result="unmatched") == 1
        assert metric(samples, "dwbot_events_total", result="invalid") == 2
        assert metric(samples, "dwbot_notifications_total", channel="hook", result="delivered") == 2
        assert metric(samples, "dwbot_notifications_total", channel="hook", result="duplicate") == 1
        assert metric(samples, "dwbot_dead_letters_total") == 2
        assert metric(samples, "dwbot_delivery_latency_seconds_count", channel="hook") == 2
        assert metric(samples, "dwbot_channel_queue_depth", channel="hook") == 0
        assert metric(samples, "dwbot_config_last_reload_successful") == 1
        assert 0 <= metric(samples, "dwbot_seconds_since_last_event") < 60
        info = [labels for (name, labels) in samples if name == "dwbot_build_info"]
        assert len(info) == 1 and dict(info[0])["rules"] == "1" and len(dict(info[0])["config_hash"]) == 12
        assert bot.terminate() == 0


def test_readyz_follows_assignment_and_state_store(broker, tmp_path):
    topic = Topic(broker, 1)
    with WebhookFake() as hook:
        bot, base, _, _ = start(tmp_path, broker, topic, hook, state="redis://127.0.0.1:1/0")
        assert wait_for(lambda: up(base), timeout=30)
        first = httpx.get(f"{base}/readyz", timeout=5)
        assert first.status_code == 503  # not assigned yet, and the state store is unreachable
        assert wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json()["checks"]["kafka"]["ok"], timeout=30)
        answer = httpx.get(f"{base}/readyz", timeout=5)
        assert answer.status_code == 503 and answer.json()["checks"]["state"]["ok"] is False
        assert bot.terminate() == 0
    (tmp_path / "ready").mkdir()
    with WebhookFake() as hook:
        bot, base, _, _ = start(tmp_path / "ready", broker, topic, hook)
        assert wait_for(lambda: up(base), timeout=30)
        assert wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, timeout=30)
        assert httpx.get(f"{base}/readyz", timeout=5).json()["ready"] is True
        assert bot.terminate() == 0


def test_hot_reload_of_rules(broker, tmp_path):
    topic = Topic(broker, 1)
    with WebhookFake() as hook:
        bot, base, _, rules_file = start(tmp_path, broker, topic, hook, rules=RULES.replace("FAILURE", "SUCCESS"))
        assert wait_for(lambda: up(base), timeout=30) and bot.wait_for_log("assigned", 30)
        topic.produce([event(1)])
        time.sleep(2)
        assert hook.messages == []  # the rule wants SUCCESS
        rules_file.write_text(RULES)  # change the rule while running
        assert bot.wait_for_log("reloaded (a file changed): 1 rule(s)", 30)
        topic.produce([event(2)])
        assert wait_for(lambda: len(hook.messages) == 1, timeout=30)

        rules_file.write_text(RULES + "  - {name: broken, match: {status: FAILED}, notify: [nowhere]}\n")
        assert bot.wait_for_log("reload failed with 2 problem(s); the running rules stay", 30)
        text = bot.text()
        assert f"{rules_file.name}:3:" in text and "unknown status 'FAILED'" in text
        assert "unknown channel 'nowhere'" in text
        assert metric(scrape(base), "dwbot_config_last_reload_successful") == 0
        topic.produce([event(3)])
        assert wait_for(lambda: len(hook.messages) == 2, timeout=30)  # the old rules still work

        rules_file.write_text(RULES)
        bot.proc.send_signal(signal.SIGHUP)
        assert bot.wait_for_log("reloaded (SIGHUP)", 30)
        assert metric(scrape(base), "dwbot_config_last_reload_successful") == 1
        assert bot.terminate() == 0


def test_json_logs_carry_event_context_and_no_secrets(broker, tmp_path):
    topic = Topic(broker, 1)
    with WebhookFake() as hook:
        port = free_port()
        config = write_config(tmp_path / "bot.yaml", broker, topic.name, f"g-{uuid.uuid4().hex[:8]}",
                              {"hook": {"type": "webhook", "url": hook.url("/h?token=SUPERSECRET123")}},
                              rules=RULES, extra={"server": {"listen": f"127.0.0.1:{port}"}})
        import os
        import subprocess
        import sys

        from conftest import ROOT
        from kafka_support import RUNNING

        log_path = tmp_path / "json.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "-c", str(config), "--log-format", "json"],
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env=os.environ | {"DWBOT_LOG_LEVEL": "INFO"})
        RUNNING.append(proc)
        topic.produce([b"not json at all", event(7), event(7)])  # the second event(7) is a duplicate
        assert wait_for(lambda: "invalid message" in log_path.read_text() and
                        "suppressed" in log_path.read_text(), timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    invalid = next(r for r in records if "invalid message" in r["message"])
    assert (invalid["topic"], invalid["partition"], invalid["offset"]) == (topic.name, 0, 0)
    assert invalid["level"] == "warning" and invalid["logger"] == "dwbot.consumer"
    duplicate = next(r for r in records if "suppressed" in r["message"])
    assert duplicate["event_id"] == "evt-7" and duplicate["rule"] == "r" and duplicate["channel"] == "hook"
    assert (duplicate["topic"], duplicate["partition"], duplicate["offset"]) == (topic.name, 0, 2)
    assert duplicate["dedup_key"] == "r:acs.dataworks:evt-7"
    assert "SUPERSECRET123" not in log_path.read_text()
