#!/usr/bin/env python3
"""Bootstrap for a fresh machine that has only Python: `python3 dev.py test` / `python3 dev.py demo`.

Creates ./.venv, installs dwbot with its test dependencies (once, and again when pyproject.toml
changes), then runs the test suite or the demo inside it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env() -> None:
    stamp = VENV / ".dwbot-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing dwbot and test dependencies ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test,demo]"], check=True)
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in ("test", "demo"):
        print(__doc__)
        return 2
    ensure_env()
    if command == "test":
        lint = subprocess.run([str(BIN / "ruff"), "check", "bot", "tests", "bench"], cwd=ROOT, check=False)
        if lint.returncode:
            return lint.returncode
        return subprocess.run([str(PYTHON), "-m", "pytest", "-q", *argv[1:]], cwd=ROOT, check=False).returncode
    return subprocess.run([str(BIN / "dwbot"), "demo", *argv[1:]], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
