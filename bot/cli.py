"""Commands only: parse arguments, call the library, print, exit codes (SPEC §5)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from bot import __version__, logs
from bot.config import Config, LoadedConfig, config_path, load_config
from bot.errors import InvalidConfig
from bot.events import InvalidEvent
from bot.inputs import Input, read_inputs
from bot.pipeline import Notification, Pipeline
from bot.preview import preview

EXIT_OK, EXIT_INVALID_CONFIG, EXIT_USAGE, EXIT_INVALID_EVENT = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dwbot", description="ChatOps notifications for DataWorks OpenEvent.")
    parser.add_argument("--version", action="version", version=f"dwbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="config file (default: $DWBOT_CONFIG, else ./bot.yaml, "
                                              "else embedded defaults)")
        p.add_argument("--rules", action="append", metavar="PATH",
                       help="rule file or directory, instead of the config's `rules:` (repeatable)")

    check = sub.add_parser("check", help="validate config, rules and templates")
    with_config(check)
    check.set_defaults(handler=cmd_check)

    test = sub.add_parser("test", help="dry run: which rules match each event, and the exact messages")
    test.add_argument("events", nargs="+", metavar="EVENT", help="file with one JSON event or JSON Lines; - = stdin")
    with_config(test)
    test.add_argument("--json", action="store_true", help="one JSON object per event (SPEC §5)")
    test.add_argument("--explain", action="store_true", help="show why each other rule did not match")
    test.set_defaults(handler=cmd_test)

    replay = sub.add_parser("replay", help="feed events from files through dedup, delivery and dead letters")
    replay.add_argument("events", nargs="+", metavar="FILE", help="file with one JSON event or JSON Lines; - = stdin")
    with_config(replay)
    replay.add_argument("--dry-run", action="store_true", help="match and render, but send nothing and touch no state")
    replay.set_defaults(handler=cmd_replay)

    run = sub.add_parser("run", help="consume kafka.topics and notify, until SIGTERM/SIGINT")
    run.add_argument("-c", "--config", help="config file (default: $DWBOT_CONFIG, else ./bot.yaml, "
                                            "else embedded defaults)")
    run.add_argument("--log-format", choices=["text", "json"], default=os.environ.get("DWBOT_LOG_FORMAT", "text"),
                     help="text (default) or JSON lines; also $DWBOT_LOG_FORMAT")
    run.set_defaults(handler=cmd_run)

    demo = sub.add_parser("demo", help="run the whole product locally: broker, samples, rules, a chat inbox")
    demo.set_defaults(handler=cmd_demo)

    schema = sub.add_parser("schema", help="print the JSON Schema of rule files or the config file")
    schema.add_argument("kind", nargs="?", choices=["rules", "config"], default="rules")
    schema.set_defaults(handler=cmd_schema)
    return parser


# ----------------------------------------------------------------------------------- loading


def _load(args: argparse.Namespace, *, strict: bool) -> Pipeline:
    """Config + rules -> Pipeline; InvalidConfig carries every problem of both."""
    path = config_path(args.config)
    problems = []
    loaded: LoadedConfig | None = None
    try:
        loaded = load_config(path)
    except InvalidConfig as exc:
        problems += exc.problems
    if loaded is None:
        # Still validate the rules, so one run reports everything; channel names can't be checked.
        rule_problems = _rule_problems_without_config(args, path)
        raise InvalidConfig(problems + rule_problems)
    return Pipeline.load(loaded, args.rules, strict=strict)


def _rule_problems_without_config(args: argparse.Namespace, path: str | None):
    from bot.events import zone
    from bot.rules.loader import load_rules
    from bot.templates import TemplateEngine

    base = Path(path).resolve().parent if path else Path.cwd()
    paths = [Path(p) for p in args.rules] if args.rules else [base / "rules"]
    try:
        load_rules(paths, None, TemplateEngine(zone(Config().timezone)))
    except InvalidConfig as exc:
        return exc.problems
    return []


def _report(exc: InvalidConfig) -> int:
    """Every problem on stderr, one `PATH:LINE:COL: message` per line; exit code 1."""
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return EXIT_INVALID_CONFIG


def _redactor(pipeline: Pipeline | None):
    return pipeline.loaded.redact if pipeline else (lambda text: text)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        pipeline = _load(args, strict=True)
    except InvalidConfig as exc:
        code = _report(exc)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return code
    rules = pipeline.rules
    print(f"ok: {pipeline.loaded.path or 'embedded defaults'}, {len(rules.files)} rule file(s), "
          f"{len(rules.ruleset.rules)} rule(s), {len(rules.templates)} template(s), "
          f"{len(pipeline.config.channels)} channel(s)")
    return EXIT_OK


# -------------------------------------------------------------------------------------- test


def cmd_test(args: argparse.Namespace) -> int:
    try:
        pipeline = _load(args, strict=True)
    except InvalidConfig as exc:
        return _report(exc)
    redact = _redactor(pipeline)
    printer = _JsonPrinter() if args.json else _HumanPrinter(redact)
    any_invalid = False
    for name in args.events:
        for item in read_inputs(name):
            record = _test_one(pipeline, item, args.explain)
            any_invalid |= record["error"] is not None
            printer.print(record)
    printer.close()
    return EXIT_INVALID_EVENT if any_invalid else EXIT_OK


def _test_one(pipeline: Pipeline, item: Input, explain: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"input": item.label, "error": item.error, "event": None, "notifications": []}
    if explain:
        record["unmatched"] = []
    if item.error:
        return record
    try:
        event = pipeline.decode(item.text) if item.text is not None else pipeline.normalise(item.raw)
    except InvalidEvent as exc:
        record["error"] = str(exc)
        return record
    record["event"] = event.summary()
    notifications = pipeline.notifications(event)
    record["notifications"] = [n.summary() for n in notifications]
    record["_notifications"] = notifications
    if explain:
        record["unmatched"] = [{"rule": rule.name, "reason": reason}
                               for rule, reason in pipeline.rules.ruleset.explain(event) if reason is not None]
    return record


class _JsonPrinter:
    def print(self, record: dict[str, Any]) -> None:
        record = {k: v for k, v in record.items() if not k.startswith("_")}
        sys.stdout.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        sys.stdout.flush()


class _HumanPrinter:
    """A readable terminal view: per event, the matched rules and a preview of each message."""

    def __init__(self, redact):
        self.redact = redact
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.bold, self.dim, self.green, self.red, self.yellow, self.reset = (
            ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[33m", "\033[0m") if color else ("",) * 6)
        self.events = self.invalid = self.sent = 0

    def print(self, record: dict[str, Any]) -> None:
        out = []
        self.events += 1
        out.append(f"{self.bold}━━ {record['input']}{self.reset}")
        if record["error"]:
            self.invalid += 1
            out.append(f"   {self.red}invalid event: {record['error']}{self.reset}")
            print("\n".join(out) + "\n")
            return
        e = record["event"]
        ws = e["workspace"]
        facts = [e["code"] or e["type"] or "?", e["status"],
                 f"{ws['name'] or '?'} ({ws['id']})" if ws["id"] else None, e["time"], f"id {e['id']}"]
        out.append(f"   {self.dim}{' · '.join(f for f in facts if f)}{self.reset}")
        notifications: list[Notification] = record.get("_notifications", [])
        if not notifications:
            out.append(f"   {self.dim}no rule matched{self.reset}")
        for n in notifications:
            self.sent += 1
            out.append(f"   {self.green}✔ {n.rule}{self.reset} → {self.bold}{n.channel}{self.reset} "
                       f"({n.channel_type})  {self.dim}dedup {n.dedup_key}{self.reset}")
            if n.template_error:
                out.append(f"     {self.yellow}⚠ {n.template_error}{self.reset}")
            for line in preview(n).splitlines() or [""]:
                out.append(f"     {self.dim}│{self.reset} {self.redact(line)}")
        for item in record.get("unmatched", []):
            out.append(f"   {self.red}✘ {item['rule']}{self.reset}: {item['reason']}")
        print("\n".join(out) + "\n")

    def close(self) -> None:
        print(f"{self.events} event(s), {self.invalid} invalid, {self.sent} notification(s) would be sent")


# --------------------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    import faulthandler
    import signal

    from bot import runtime

    _service_logging(fmt=args.log_format)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack
    path = config_path(args.config)
    try:
        loaded = load_config(path)
        Pipeline.load(loaded)  # validate the rules before connecting anywhere
    except InvalidConfig as exc:
        return _report(exc)
    logs.REDACTION.redact = loaded.redact
    return runtime.run(loaded)


def _service_logging(default: str = "INFO", fmt: str = "text") -> None:
    logs.setup(os.environ.get("DWBOT_LOG_LEVEL", default), fmt)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    _service_logging(default="WARNING")  # the demo's own output is the show
    return run_demo()


# ------------------------------------------------------------------------------------ replay


def cmd_replay(args: argparse.Namespace) -> int:
    from bot.clock import SYSTEM
    from bot.deadletter import DeadLetterFile
    from bot.delivery import Delivery, Result
    from bot.replay import ReplayReport, replay
    from bot.state import open_store

    try:
        pipeline = _load(args, strict=False)
    except InvalidConfig as exc:
        return _report(exc)
    config = pipeline.config
    inputs = (item for name in args.events for item in read_inputs(name))
    if args.dry_run:
        return _replay_dry_run(pipeline, inputs)
    store = open_store(config.state)
    dead_letters = DeadLetterFile(config.dead_letter.file, pipeline.loaded.redact)
    delivery = Delivery.build(config.channels, store, dead_letters, max_retry_time=config.delivery.max_retry_time,
                              timeouts=_timeouts(config))
    last = [0.0]

    def progress(report: ReplayReport, queued: int) -> None:
        now = SYSTEM.now()
        if now - last[0] >= 2.0:
            last[0] = now
            done = sum(report.results.values())
            print(f"… {report.events} events read, {done}/{report.notifications} notifications handled, "
                  f"{queued} queued", file=sys.stderr, flush=True)

    try:
        report = replay(inputs, pipeline, delivery, dead_letters, progress)
    finally:
        delivery.close()
        store.close()
    print(f"{report.events} event(s), {report.invalid} invalid, {report.notifications} notification(s)")
    for channel in config.channels:
        counts = {r: report.results[(channel, r)] for r in Result}
        print(f"  {channel}: {counts[Result.DELIVERED]} delivered, {counts[Result.DUPLICATE]} duplicate(s), "
              f"{counts[Result.DEAD_LETTERED]} dead-lettered")
    if report.dead_lettered():
        print(f"{report.dead_lettered()} dead letter(s) written to {config.dead_letter.file}", file=sys.stderr)
        return 1
    return EXIT_OK


def _timeouts(config: Config):
    from bot.channels import Timeouts

    return Timeouts(connect=config.delivery.connect_timeout, read=config.delivery.read_timeout)


def _replay_dry_run(pipeline: Pipeline, inputs) -> int:
    from collections import Counter

    per_channel: Counter = Counter()
    events = invalid = 0
    for item in inputs:
        events += 1
        record = _test_one(pipeline, item, explain=False)
        if record["error"]:
            invalid += 1
            print(f"{item.label}: invalid: {record['error']}")
            continue
        for n in record["_notifications"]:
            per_channel[n.channel] += 1
            print(f"{item.label}: {n.rule} → {n.channel}: {preview(n).splitlines()[0] if preview(n) else ''}")
    print(f"dry run: {events} event(s), {invalid} invalid, nothing sent")
    for channel, count in per_channel.items():
        print(f"  {channel}: {count} notification(s) would be sent")
    return 1 if invalid else EXIT_OK


# ------------------------------------------------------------------------------------ schema


def cmd_schema(args: argparse.Namespace) -> int:
    from bot.rules.model import rule_file_schema

    schema = rule_file_schema() if args.kind == "rules" else Config.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema"} | schema | {
        "title": "dwbot rule file" if args.kind == "rules" else "dwbot config file"}
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return EXIT_OK
