"""`dwbot replay`: the full pipeline from files, with sqlite state across runs."""

from __future__ import annotations

import json

from conftest import ROOT, sample
from fakes import DingTalkFake, SlackFake

from bot import deadletter
from bot.cli import main


def write_setup(tmp_path, ding_url: str, slack_url: str) -> tuple[str, str]:
    (tmp_path / "bot.yaml").write_text(json.dumps({
        "channels": {"data-team-dingtalk": {"type": "dingtalk", "url": ding_url, "secret": "SECreplay+/="},
                     "oncall-slack": {"type": "slack", "url": slack_url}},
        "state": f"sqlite:///{tmp_path}/state.db",
        "dead_letter": {"file": str(tmp_path / "dead.jsonl")},
        "workspaces": {"102345": "fin_dw_prod"},
        "rules": [str(ROOT / "rules")],
    }))
    lines = []
    for i in range(3):
        raw = sample("instance-status-failure-cloudevent.json")
        raw["id"] = f"replay-{i}"
        raw["data"]["taskId"] = 1000 + i
        lines.append(json.dumps(raw))
    lines.append("{this is not json")
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    return str(tmp_path / "bot.yaml"), str(events)


def test_replay_twice_posts_nothing_the_second_time_and_retries_failures(tmp_path, capsys):
    with DingTalkFake() as ding, SlackFake() as slack:
        config, events = write_setup(tmp_path, ding.add_robot("tok", "SECreplay+/="),
                                     slack.url("/services/T000/B000/not-yet"))
        assert main(["replay", "-c", config, events]) == 1  # slack: no_service, and one invalid line
        out = capsys.readouterr().out
        assert "4 event(s), 1 invalid, 6 notification(s)" in out
        assert "data-team-dingtalk: 3 delivered, 0 duplicate(s), 0 dead-lettered" in out
        assert "oncall-slack: 0 delivered, 0 duplicate(s), 3 dead-lettered" in out
        assert len(ding.robots["tok"].messages) == 3
        records = deadletter.read(tmp_path / "dead.jsonl")
        assert [r["kind"] for r in records].count("invalid-message") == 1
        invalid = next(r for r in records if r["kind"] == "invalid-message")
        assert invalid["input"].endswith("events.jsonl:4") and invalid["message"] == "{this is not json"
        assert "SECreplay" not in (tmp_path / "dead.jsonl").read_text()

        slack.add_hook("not-yet")  # the webhook is fixed
        assert main(["replay", "-c", config, events]) == 1  # the invalid line is dead-lettered again
        out = capsys.readouterr().out
        assert "data-team-dingtalk: 0 delivered, 3 duplicate(s), 0 dead-lettered" in out
        assert "oncall-slack: 3 delivered, 0 duplicate(s), 0 dead-lettered" in out
        assert len(ding.robots["tok"].messages) == 3  # nothing posted twice
        assert len(slack.messages["not-yet"]) == 3

        valid_only = tmp_path / "valid.jsonl"
        valid_only.write_text("\n".join((tmp_path / "events.jsonl").read_text().splitlines()[:3]) + "\n")
        assert main(["replay", "-c", config, str(valid_only)]) == 0
        assert "oncall-slack: 0 delivered, 3 duplicate(s), 0 dead-lettered" in capsys.readouterr().out


def test_replay_dry_run_sends_nothing(tmp_path, capsys):
    with DingTalkFake() as ding, SlackFake() as slack:
        config, events = write_setup(tmp_path, ding.add_robot("tok"), slack.add_hook("h"))
        assert main(["replay", "--dry-run", "-c", config, events]) == 1  # exit 1: one invalid event
        out = capsys.readouterr().out
        assert "dry run: 4 event(s), 1 invalid, nothing sent" in out
        assert "data-team-dingtalk: 3 notification(s) would be sent" in out
        assert ding.requests == [] and slack.requests == []
        assert not (tmp_path / "state.db").exists()
