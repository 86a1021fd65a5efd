"""Templates: filters, sandbox, bounded output, Markdown per chat, escaping, truncation."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta, timezone

import pytest
from conftest import pipeline_for, sample

from bot.channels import dingtalk, slack
from bot.templates import MAX_OUTPUT_CHARS, TemplateEngine, filter_duration

CST = timezone(timedelta(hours=8))


@pytest.fixture
def engine() -> TemplateEngine:
    return TemplateEngine(CST)


def render(engine: TemplateEngine, source: str, **context) -> str:
    return engine.render(engine.compile(source), context).plain


@pytest.mark.parametrize("value,expected", [
    (1742235102000, "2025-03-18 02:11:42"),        # epoch ms
    (1742235102, "2025-03-18 02:11:42"),           # epoch s
    ("2025-03-17T18:11:42Z", "2025-03-18 02:11:42"),
    ("2025-03-18 02:11:42", "2025-03-18 02:11:42"),  # zone-less: the configured zone
])
def test_datetime_filter(engine, value, expected):
    assert render(engine, "{{ v | datetime }}", v=value) == expected


def test_datetime_filter_format_and_zone():
    utc = TemplateEngine(UTC)
    assert render(utc, "{{ v | datetime('%H:%M %Z') }}", v=1742235102000) == "18:11 UTC"


@pytest.mark.parametrize("ms,expected", [(3723000, "1h 02m 03s"), (125000, "2m 05s"), (45000, "45s"),
                                         (0, "0s"), (90061000, "25h 01m 01s"), ("3723000", "1h 02m 03s")])
def test_duration_filter(ms, expected):
    assert filter_duration(ms) == expected


def test_dataworks_filters(engine):
    assert render(engine, "{{ 3 | dag_type }}|{{ 2 | check_result }}|{{ 3 | baseline_status }}|{{ 5 | status_name }}") \
        == "data backfill|critical|overtime|FAILURE"


@pytest.mark.parametrize("source", ["{{ ''.__class__.__mro__ }}", "{{ event.__init__.__globals__ }}",
                                    "{{ cycler.__init__.__globals__.os }}"])
def test_sandbox_blocks_python_internals(tmp_path, source):
    rules = f"""
rules:
  - name: evil
    match: {{event: instance-status-changes}}
    notify: [audit-hook]
    template: {{title: "t", text: "{source}"}}
"""
    event = sample("instance-status-failure-cloudevent.json")
    strict = pipeline_for(tmp_path, rules, strict=True)
    [n] = strict.notifications(strict.normalise(event))
    assert "unsafe" in n.template_error  # `dwbot test` says so
    lenient = pipeline_for(tmp_path, rules, strict=False)
    [n] = lenient.notifications(lenient.normalise(event))
    assert n.template_error is None and n.body["text"] == ""  # `run`: nothing leaks


def test_broken_template_falls_back_to_the_facts(tmp_path):
    p = pipeline_for(tmp_path, """
rules:
  - name: divides
    match: {event: instance-status-changes}
    notify: [audit-hook]
    template: {title: "t", text: "{{ event.data.status / 0 }}"}
""", strict=False)
    [n] = p.notifications(p.normalise(sample("instance-status-failure-cloudevent.json")))
    assert "ZeroDivisionError" in n.template_error
    assert n.body["title"] == "dwbot: rule divides matched instance-status-changes"
    assert "9b552732-3c98-554a-bcf9-65e82a897658" in n.body["text"] and "fin\\_dw\\_prod" not in n.body["text"]
    assert p.template_fallbacks == 1


def test_output_is_bounded(engine):
    out = render(engine, "{% for i in range(90000) %}xxxxxxxxxx{% endfor %}")
    assert len(out) < MAX_OUTPUT_CHARS + 100 and out.endswith("[template output cut at 100,000 characters]")


def test_markdown_to_slack_mrkdwn():
    md = "# Heading\n**bold** and *italic* and ~~gone~~\n- item\n[docs](https://x.example/a_b) `**code**`"
    assert slack.from_markdown(md) == ("*Heading*\n*bold* and _italic_ and ~gone~\n• item\n"
                                       "<https://x.example/a_b|docs> `**code**`")


def test_markdown_to_dingtalk_keeps_markdown_and_line_breaks():
    assert dingtalk.from_markdown("**a**\nb\n\nc") == "**a**  \nb\n\nc"


INJECTIONS = ["<!channel>", "<!here>", "@all", "<https://evil.example|Runbook>", "[Runbook](https://evil.example)",
              "<@U0123ABC>", "**bold**", "@13800001111", "![img](https://evil.example/x.png)"]


def test_event_values_never_become_mentions_links_or_formatting(tmp_path):
    p = pipeline_for(tmp_path, """
templates:
  t:
    title: "{{ event.data.nodeName }}"
    text: "**Node** {{ event.data.nodeName }} · [manual](https://docs.example/runbook)"
    slack: {text: "custom {{ event.data.nodeName }}"}
rules:
  - name: md
    match: {event: node-change-updated}
    notify: [data-team-dingtalk, oncall-slack, audit-hook]
    template: {title: "{{ event.data.nodeName }}", text: "**Node** {{ event.data.nodeName }} · [manual](https://docs.example/runbook)"}
  - name: custom
    match: {event: node-change-updated}
    notify: [oncall-slack]
    template: t
""")
    raw = sample("node-change-updated-cloudevent.json")
    raw["data"]["nodeName"] = " ".join(INJECTIONS)
    ding, slack_body, hook, custom = [n.body for n in p.notifications(p.normalise(raw))]

    slack_texts = [slack_body["text"], custom["text"]] + [b["text"]["text"] for b in slack_body["blocks"]
                                                         if b["type"] == "section"]
    for text in slack_texts:
        for live in ("<!channel>", "<!here>", "<https://evil.example|", "<@U0123ABC>", "*bold*"):
            assert live not in text
        assert "&lt;!channel&gt;" in text
    assert "<https://docs.example/runbook|manual>" in slack_body["blocks"][-1]["text"]["text"]  # template link kept
    assert "*Node*" in slack_body["blocks"][-1]["text"]["text"]  # template formatting kept

    ding_text = ding["markdown"]["text"]
    for live in ("@all", "@13800001111", "[Runbook](https://evil", "](https://evil", "<https", "**bold**"):
        assert live not in ding_text
    assert "[manual](https://docs.example/runbook)" in ding_text and "**Node**" in ding_text
    assert "isAtAll" not in json.dumps(ding)

    for live in (r"(?<!\\)\[Runbook(?<!\\)\]\(", r"(?<!\\)<https://evil", r"(?<!\\)\*\*bold"):
        assert not re.search(live, hook["text"]), live
    assert "[manual](https://docs.example/runbook)" in hook["text"]
    assert hook["title"] == " ".join(INJECTIONS)  # plain-text fields carry the value as it is
    assert hook["event"]["data"]["nodeName"] == " ".join(INJECTIONS)


def test_values_keep_their_visible_text():
    # what an on-call engineer copies from the chat must still be the table name / cron
    assert slack.escape("ods_orders_di") == "ods_orders_di"
    assert dingtalk.escape("00 30 05 * * ?") == "00 30 05 * * ?"
    assert slack.escape("a & b").replace("\u200b", "") == "a &amp; b"


def test_long_messages_are_truncated_with_marker(tmp_path):
    p = pipeline_for(tmp_path, """
rules:
  - name: long
    match: {event: node-change-updated}
    notify: [data-team-dingtalk, oncall-slack]
    template: {title: "{{ event.data.nodeName }}", text: "{{ event.data.nodeName }}"}
""")
    raw = sample("node-change-updated-cloudevent.json")
    raw["data"]["nodeName"] = "数据" * 30000  # 3 bytes a character in UTF-8
    ding, slack_body = [n.body for n in p.notifications(p.normalise(raw))]
    size = len(json.dumps(ding, ensure_ascii=False).encode())
    assert 19000 < size <= 20000
    assert ding["markdown"]["text"].endswith("… [truncated by dwbot]")
    header = slack_body["blocks"][0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")
    sections = [b["text"]["text"] for b in slack_body["blocks"][1:]]
    assert all(len(s) <= 3000 for s in sections) and sum(map(len, sections)) <= 12000
    assert sections[-1].endswith("… [truncated by dwbot]")
    assert len(slack_body["text"]) <= 3000 and slack_body["text"].endswith("… [truncated by dwbot]")
