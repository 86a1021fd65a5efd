"""Every rule in rules/ fires on the sample event it is written for, and on nothing else."""

from __future__ import annotations

import pytest
from conftest import SAMPLES, sample

# rule -> (sample it must match, channels it notifies)
SHIPPED = {
    "prod-instance-failed": ("instance-status-failure-cloudevent.json", ["data-team-dingtalk", "oncall-slack"]),
    "instance-waiting-for-resources": ("instance-status-wait-resource-cloudevent.json", ["oncall-slack"]),
    "dqc-critical": ("dqc-check-finished-critical-cloudevent.json", ["data-team-dingtalk", "oncall-slack"]),
    "prod-node-deleted": ("node-change-deleted-cloudevent.json", ["data-team-dingtalk"]),
    "prod-node-changed": ("node-change-updated-cloudevent.json", ["data-team-dingtalk"]),
    "baseline-at-risk": ("monitor-alert-baseline-cloudevent.json", ["data-team-dingtalk", "oncall-slack"]),
    "monitoring-alert": ("monitor-alert-event-cloudevent.json", ["oncall-slack"]),
    "workflow-failed": ("workflow-status-failure-cloudevent.json", ["data-team-dingtalk", "oncall-slack"]),
}


def test_every_shipped_rule_is_covered(pipeline):
    assert sorted(r.name for r in pipeline.rules.ruleset.rules) == sorted(SHIPPED)


@pytest.mark.parametrize("rule", sorted(SHIPPED))
def test_rule_on_its_sample(pipeline, rule):
    name, channels = SHIPPED[rule]
    notifications = pipeline.notifications(pipeline.normalise(sample(name)))
    assert [(n.rule, n.channel) for n in notifications] == [(rule, c) for c in channels]
    for n in notifications:
        assert n.template_error is None, n.template_error  # strict: no undefined value in the template
        text = n.body["markdown"]["text"] if n.channel_type == "dingtalk" else n.body["text"]
        assert "None" not in text and text.strip()


def test_quiet_samples_notify_nothing(pipeline):
    loud = {name for name, _ in SHIPPED.values()} | {"instance-status-failure-legacy.json"}
    for path in sorted(SAMPLES.glob("*.json")):
        if path.name not in loud:
            assert pipeline.notifications(pipeline.normalise(sample(path.name))) == [], path.name


def test_failure_message_content(pipeline):
    [ding, slack] = pipeline.notifications(pipeline.normalise(sample("instance-status-failure-cloudevent.json")))
    assert ding.body["markdown"]["title"] == "[fin_dw_prod] instance 523536569736 failed"
    assert "failed at 2025-03-18 02:11:42" in ding.body["markdown"]["text"]
    assert "Ran for: 1m 37s" in ding.body["markdown"]["text"]
    assert slack.body["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "[fin_dw_prod] instance 523536569736 failed", "emoji": True}}


def test_frozen_instances_do_not_page(pipeline):
    raw = sample("instance-status-failure-cloudevent.json")
    raw["data"]["taskType"] = 2  # PAUSE: a frozen node's instance fails on purpose
    assert pipeline.notifications(pipeline.normalise(raw)) == []


def test_same_failure_via_both_envelopes_has_one_dedup_key(pipeline):
    legacy = sample("instance-status-failure-legacy.json")
    cloud = {"id": "other-id", "source": "acs.dataworks", "type": "dataworks:InstanceStatusChanges:InstanceStatusChanges",
             "time": "2025-03-18T05:03:27+08:00", "data": legacy["messageBody"]}
    keys = {n.dedup_key for raw in (legacy, cloud) for n in pipeline.notifications(pipeline.normalise(raw))}
    assert keys == {"instance:523541299871:FAILURE"}
