"""`dwbot demo`: the newcomer's first command works on this machine, start to end."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def test_demo_runs_the_whole_product():
    env = {k: v for k, v in os.environ.items() if k not in ("DINGTALK_WEBHOOK_URL", "SLACK_WEBHOOK_URL")}
    result = subprocess.run([sys.executable, "-m", "bot", "demo"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=180, check=False)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "published 28 messages" in out
    assert "28 messages consumed and committed: 10 matched a rule, 15 matched none, 3 invalid" in out
    assert "14 messages in the local inbox; the duplicate was posted once" in out
    assert out.count("[fin_dw_prod] instance 523536569736 failed") == 2  # DingTalk and Slack, once each
    assert out.count("dead letter: invalid message") == 3
    assert "FAIL" not in result.stderr
