"""Matching throughput with 1,000 rules: the indexed RuleSet against a naive evaluator.

Run:  .venv/bin/python bench/bench_matching.py   (add --events N to change the sample size)

Both evaluators use the same compiled rules and conditions; the naive one checks every rule for
every event, as a rule engine without an index would. Events are normalised before timing, because
this measures matching only. Prints events/s for each and their ratio, for two workloads:
events that match no rule, and events that match a few.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bot import catalog
from bot.config import load_config
from bot.pipeline import Pipeline

CONFIG = """\
channels:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
state: memory://
rules: [rules/]
"""


def make_rules(count: int) -> str:
    """`count` rules for event families other than instance status, shaped like real ones."""
    codes = [k.code for k in catalog.EVENT_KINDS if k.code != "instance-status-changes"]
    lines = ["rules:"]
    for i in range(count):
        code = codes[i % len(codes)]
        kind = i % 4
        if kind == 0:
            match = f"{{event: {code}, workspace: ['{100000 + i}', ws_{i}]}}"
        elif kind == 1:
            match = f"{{event: {code}, data: {{projectId: {100000 + i}, operator: {{prefix: '27'}}}}}}"
        elif kind == 2:
            match = f"{{event: {code}, data: {{nodeName: {{regex: '^ods_{i}_'}}}}}}"
        else:
            match = f"{{event: {code}, data: {{priority: {{numeric: ['>=', {i % 8}]}}}}}}"
        lines.append(f"  - {{name: other-{i}, match: {match}, notify: [hook]}}")
    return "\n".join(lines) + "\n"


MATCHING_RULES = """\
rules:
  - {name: failed, match: {event: instance-status-changes, status: FAILURE, data: {dagType: [0, 3]}}, notify: [hook]}
  - {name: failed-fin, match: {event: instance-status-changes, workspace: [fin_dw_prod, '102345']}, notify: [hook]}
  - {name: slow, match: {event: instance-status-changes, data: {taskType: {anything-but: 2}}}, notify: [hook]}
"""


def events(pipeline: Pipeline, count: int, *, matching: bool) -> list:
    """Instance-status events: failed scheduled runs in fin_dw_prod (3 rules match), or frozen
    successes in growth_ads (the 3 instance rules fail on their conditions; 1,000 others don't apply)."""
    template = json.loads((Path(__file__).parent.parent / "bot/samples/instance-status-failure-cloudevent.json")
                          .read_text())
    out = []
    for i in range(count):
        raw = json.loads(json.dumps(template))
        raw["id"] = f"bench-{i}"
        raw["data"]["taskId"] = 523536569736 + i
        if not matching:
            raw["data"].update(status=6, taskType=2, appId=208812)
        out.append(pipeline.normalise(raw))
    return out


def indexed(pipeline: Pipeline, batch: list) -> int:
    match = pipeline.rules.ruleset.match
    return sum(len(match(e)) for e in batch)


def naive(pipeline: Pipeline, batch: list) -> int:
    rules = pipeline.rules.ruleset.enabled
    found = 0
    for event in batch:
        for rule in rules:
            names = rule.event_names
            if (names is None or names(event.code, event.type, event.category)) and rule.matches_rest(event):
                found += 1
    return found


def rate(fn, pipeline: Pipeline, batch: list, repeats: int) -> tuple[float, int]:
    best = float("inf")
    found = 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = fn(pipeline, batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rules").mkdir()
        (root / "bot.yaml").write_text(CONFIG)
        (root / "rules" / "other.yaml").write_text(make_rules(args.rules))
        (root / "rules" / "zz-matching.yaml").write_text(MATCHING_RULES)
        pipeline = Pipeline.load(load_config(str(root / "bot.yaml")))
    print(f"{len(pipeline.rules.ruleset.rules)} rules; {args.events} normalised events; best of {args.repeats}",
          flush=True)
    naive_batch = max(1, args.events // 20)  # the naive evaluator is slow: time it on fewer events
    for label, matching, expect in (("matching nothing", False, 0), ("matching a few", True, 3)):
        batch = events(pipeline, args.events, matching=matching)
        fast, found_fast = rate(indexed, pipeline, batch, args.repeats)
        slow, found_slow = rate(naive, pipeline, batch[:naive_batch], args.repeats)
        assert found_fast == expect * len(batch) and found_slow == expect * naive_batch, (found_fast, found_slow)
        print(f"{label:>17}: indexed {fast:12,.0f} events/s   naive {slow:10,.0f} events/s   "
              f"ratio {fast / slow:6.1f}x   ({expect} matches/event)")


if __name__ == "__main__":
    main()
