"""@-mentions come from `people:` in the config, never from event text."""

from __future__ import annotations

import json

from conftest import sample

from bot.config import load_config
from bot.pipeline import Pipeline

RULES = """
rules:
  - name: owner-paged
    match: {event: node-change-updated}
    notify:
      - {channel: ding, mention: ["{{ event.data.ownerId }}", "{{ event.data.operator }}", all]}
      - {channel: slk, mention: ["{{ event.data.ownerId }}"]}
      - {channel: hook, mention: ["{{ event.data.ownerId }}"]}
      - ding-quiet
    template: {title: "node {{ event.data.nodeName }} changed", text: "by {{ event.data.operator }}"}
"""


def pipeline(tmp_path) -> Pipeline:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "bot.yaml").write_text(json.dumps({
        "channels": {"ding": {"type": "dingtalk", "url": "http://127.0.0.1:9/robot/send?access_token=t"},
                     "ding-quiet": {"type": "dingtalk", "url": "http://127.0.0.1:9/robot/send?access_token=q"},
                     "slk": {"type": "slack", "url": "http://127.0.0.1:9/services/T/B/x"},
                     "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "people": {"3019874562200418": {"name": "Li Wei", "mobile": 13800001111, "slack_user_id": "U0123ABC"}},
        "rules": ["rules.yaml"]}))
    return Pipeline.load(load_config(str(tmp_path / "bot.yaml")), strict=True)


def test_mentions_per_channel(tmp_path):
    p = pipeline(tmp_path)
    raw = sample("node-change-updated-cloudevent.json")  # ownerId and operator 3019874562200418
    raw["data"]["nodeName"] = "@all <!here> @13900000000"
    ding, slack, hook, quiet = [n.body for n in p.notifications(p.normalise(raw))]
    assert ding["at"] == {"atMobiles": ["13800001111"], "atUserIds": [], "isAtAll": True}
    assert ding["markdown"]["text"].endswith("\n\n@13800001111 @all")
    assert ding["markdown"]["text"].count("@all") == 1  # the event's "@all" is neutralised
    assert "@13900000000" not in ding["markdown"]["text"]
    section = slack["blocks"][-1]["text"]["text"]
    assert section.endswith("\n<@U0123ABC>") and "<!here>" not in section and "<!channel>" not in section
    assert hook["mentions"] == [{"name": "Li Wei", "mobile": "13800001111", "slack_user_id": "U0123ABC"}]
    assert "at" not in quiet  # no `mention:` on that target


def test_unknown_uid_is_not_mentioned(tmp_path):
    p = pipeline(tmp_path)
    raw = sample("node-change-updated-cloudevent.json")
    raw["data"]["ownerId"] = raw["data"]["operator"] = "999"
    ding, slack, *_ = [n.body for n in p.notifications(p.normalise(raw))]
    assert ding["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": True}  # only `all` remains
    assert "<@" not in json.dumps(slack)
