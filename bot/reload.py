"""Hot reload: on SIGHUP, and when the config or a rule file changes, validate everything again;
if valid, swap the pipeline between two events; if not, keep the running rules, log every problem
as PATH:LINE:COL and set dwbot_config_last_reload_successful to 0 (as Alertmanager does).

Files are compared by content hash every few seconds rather than watched through inotify: a
Kubernetes ConfigMap update swaps a symlink, which inotify-based watchers easily miss.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from bot.config import load_config
from bot.errors import InvalidConfig
from bot.pipeline import Pipeline
from bot.rules.loader import find_rule_files

log = logging.getLogger("dwbot.reload")

# Changing these needs new workers or connections: a reload that changes them is refused.
RESTART_ONLY = ("kafka", "channels", "state", "dead_letter", "delivery", "server")


class Reloader:
    def __init__(self, config_path: str | None, runner, metrics, interval: float = 3.0):
        self.config_path = config_path
        self.runner = runner
        self.metrics = metrics
        self.interval = interval
        self.requested = threading.Event()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._fingerprint = self.fingerprint()
        self._thread = threading.Thread(target=self._watch, name="reload", daemon=True)

    def start(self) -> Reloader:
        self._thread.start()
        return self

    def fingerprint(self) -> str:
        """Hash of the config file and every rule file's path and content."""
        digest = hashlib.sha256()
        paths = [Path(self.config_path)] if self.config_path else []
        files, _ = find_rule_files(self.runner.pipeline.loaded.rule_paths())
        for path in paths + files:
            digest.update(str(path).encode())
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"<missing>")
        return digest.hexdigest()

    def _watch(self) -> None:
        while not self.stop.is_set():
            triggered = self.requested.wait(self.interval)
            if self.stop.is_set():
                return
            self.requested.clear()
            current = self.fingerprint()
            if triggered or current != self._fingerprint:
                self._fingerprint = current
                self.reload(reason="SIGHUP" if triggered else "a file changed")

    def reload(self, reason: str = "request") -> bool:
        with self._lock:
            old = self.runner.pipeline
            try:
                loaded = load_config(self.config_path)
                changed = [k for k in RESTART_ONLY
                           if getattr(loaded.config, k) != getattr(old.loaded.config, k)]
                if changed:
                    log.error("reload (%s) refused: %s changed; restart dwbot to apply that; the running "
                              "rules stay", reason, ", ".join(changed))
                    self.metrics.reload_failed()
                    return False
                pipeline = Pipeline.load(loaded, metrics=self.metrics)
            except InvalidConfig as exc:
                for problem in exc.problems:
                    log.error("reload (%s) failed: %s", reason, problem)
                log.error("reload failed with %d problem(s); the running rules stay", len(exc.problems))
                self.metrics.reload_failed()
                return False
            self.runner.pipeline = pipeline  # one attribute: the consumer picks it up at its next event
            self.metrics.loaded(len(pipeline.rules.ruleset.rules), self.fingerprint()[:12])
            log.info("reloaded (%s): %d rule(s) from %d file(s)", reason, len(pipeline.rules.ruleset.rules),
                     len(pipeline.rules.files))
            return True
