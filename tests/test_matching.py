"""Rule matching: shorthands, when, enabled, stop, order, explain, and the index."""

from __future__ import annotations

from conftest import pipeline_for, sample

from bot.rules import matcher

FAILED = sample("instance-status-failure-cloudevent.json")
LEGACY_FAILED = sample("instance-status-failure-legacy.json")


def names(pipeline, raw) -> list[str]:
    return [r.name for r in pipeline.rules.ruleset.match(pipeline.normalise(raw))]


def test_shorthands_and_order(tmp_path):
    p = pipeline_for(tmp_path, """
rules:
  - {name: by-name, match: {workspace: fin_dw_prod, event: instance-status-changes}, notify: [oncall-slack]}
  - {name: by-id, match: {workspace: ["999", "102345"]}, notify: [oncall-slack]}
  - {name: by-glob, match: {workspace: "fin_*", event: "dataworks:Instance*"}, notify: [oncall-slack]}
  - {name: by-type, match: {event: "dataworks:InstanceStatusChanges:InstanceStatusChanges"}, notify: [oncall-slack]}
  - {name: by-category, match: {event: instance-status-change}, notify: [oncall-slack]}
  - {name: status-list, match: {status: [success, FAILURE]}, notify: [oncall-slack]}
  - {name: other-ws, match: {workspace: growth_ads}, notify: [oncall-slack]}
  - {name: other-status, match: {status: SUCCESS}, notify: [oncall-slack]}
  - {name: other-event, match: {event: "dataworks:Dqc*"}, notify: [oncall-slack]}
""")
    assert names(p, FAILED) == ["by-name", "by-id", "by-glob", "by-type", "status-list"]
    # legacy envelope: category `instance-status-change`, workspace 208812
    assert names(p, LEGACY_FAILED) == ["by-type", "by-category", "status-list", "other-ws"]


def test_when_enabled_stop(tmp_path):
    p = pipeline_for(tmp_path, """
rules:
  - name: long-run
    match: {event: instance-status-changes}
    when: "event.data.finishTime - event.data.beginRunningTime > 60000"
    notify: [oncall-slack]
  - name: short-run
    match: {event: instance-status-changes}
    when: "event.data.finishTime - event.data.beginRunningTime > 3600000"
    notify: [oncall-slack]
  - {name: disabled, enabled: false, match: {event: instance-status-changes}, notify: [oncall-slack]}
  - {name: stopper, stop: true, match: {status: FAILURE}, notify: [oncall-slack]}
  - {name: after-stop, match: {status: FAILURE}, notify: [oncall-slack]}
""")
    assert names(p, FAILED) == ["long-run", "stopper"]
    running = sample("instance-status-running-cloudevent.json")  # no finishTime: `when` errs -> no match
    assert names(p, running) == []
    assert p.rules.when_errors["long-run"] == 1
    explained = dict((r.name, reason) for r, reason in p.rules.ruleset.explain(p.normalise(FAILED)))
    assert explained["long-run"] is None
    assert explained["short-run"].startswith("when: event.data.finishTime")
    assert explained["disabled"] == "enabled: false"
    assert explained["after-stop"] == "not evaluated: rule stopper matched first and has stop: true"


def test_explain_gives_first_failing_condition(tmp_path):
    p = pipeline_for(tmp_path, """
rules:
  - {name: wants-success, match: {event: instance-status-changes, status: SUCCESS}, notify: [oncall-slack]}
  - {name: wrong-event, match: {event: dag-status-changes, status: SUCCESS}, notify: [oncall-slack]}
  - {name: wrong-ws, match: {workspace: [growth_ads, risk_ml_lab]}, notify: [oncall-slack]}
  - {name: wrong-data, match: {data: {dagType: [3]}}, notify: [oncall-slack]}
  - {name: wrong-pattern, match: {pattern: {source: [acs.other]}}, notify: [oncall-slack]}
""")
    reasons = {r.name: reason for r, reason in p.rules.ruleset.explain(p.normalise(FAILED))}
    assert reasons == {
        "wants-success": "status: FAILURE != SUCCESS",
        "wrong-event": "event: instance-status-changes != dag-status-changes",
        "wrong-ws": "workspace: fin_dw_prod (102345) != [growth_ads, risk_ml_lab]",
        "wrong-data": "data.dagType: 0 does not match [3]",
        "wrong-pattern": 'pattern: source: "acs.dataworks" does not match ["acs.other"]',
    }


def test_pattern_applies_to_cloudevents_form_of_legacy_events(tmp_path):
    p = pipeline_for(tmp_path, """
rules:
  - name: eb-pattern
    match:
      pattern:
        source: [acs.dataworks]
        type: [dataworks:InstanceStatusChanges:InstanceStatusChanges]
        data: {status: [5], appId: [{numeric: [">", 0]}]}
    notify: [oncall-slack]
""")
    assert names(p, FAILED) == ["eb-pattern"]
    assert names(p, LEGACY_FAILED) == ["eb-pattern"]


def test_index_skips_rules_for_other_events(tmp_path, monkeypatch):
    rules = "\n".join(
        f"  - {{name: dqc-{i}, match: {{event: dqc-check-finished-event, data: {{ruleId: {i}}}}}, notify: [oncall-slack]}}"
        for i in range(200))
    p = pipeline_for(tmp_path, "rules:\n" + rules +
                     "\n  - {name: mine, match: {event: instance-status-changes}, notify: [oncall-slack]}\n")
    calls = []
    original = matcher.CompiledRule.matches_rest
    monkeypatch.setattr(matcher.CompiledRule, "matches_rest",
                        lambda self, event: calls.append(self.name) or original(self, event))
    assert names(p, FAILED) == ["mine"]
    assert calls == ["mine"]  # the 200 DQC rules were never looked at


def test_triage_skips_events_no_rule_can_match_but_still_rejects_invalid_ones(tmp_path):
    import json

    import pytest

    from bot.events import InvalidEvent

    p = pipeline_for(tmp_path, """
rules:
  - {name: failed, match: {event: instance-status-changes, status: FAILURE}, notify: [oncall-slack]}
""")
    failed = json.dumps(FAILED)
    running = json.dumps(sample("instance-status-running-cloudevent.json"))
    assert p.decode_if_wanted(failed).id == FAILED["id"]
    assert p.decode_if_wanted(running) is None  # no rule for RUNNING: no Event built
    assert p.rules.ruleset.match(p.decode(running)) == []  # ... which is what full matching says too
    with pytest.raises(InvalidEvent, match="no `id`"):
        p.decode_if_wanted('{"specversion": "1.0", "type": "dataworks:X:Y", "data": {}}')
