"""`server.listen`: GET /healthz (alive), /readyz (rules loaded, partitions assigned, state store
reachable) and /metrics (Prometheus text format)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from bot.metrics import Metrics

log = logging.getLogger("dwbot.server")

Check = Callable[[], tuple[bool, str]]


class OpsServer:
    def __init__(self, listen: str, metrics: Metrics, readiness: dict[str, Check]):
        host, _, port = listen.rpartition(":")
        self.metrics = metrics
        self.readiness = readiness
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._reply(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    checks = server.check()
                    ready = all(ok for ok, _ in checks.values())
                    body = json.dumps({"ready": ready, "checks": {k: {"ok": ok, "detail": detail}
                                                                  for k, (ok, detail) in checks.items()}})
                    self._reply(200 if ready else 503, body.encode() + b"\n", "application/json")
                elif path == "/metrics":
                    self._reply(200, server.metrics.exposition(), CONTENT_TYPE_LATEST)
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="ops-server", daemon=True)

    def check(self) -> dict[str, tuple[bool, str]]:
        results = {}
        for name, check in self.readiness.items():
            try:
                results[name] = check()
            except Exception as exc:  # a failing check means "not ready", never a crash
                results[name] = (False, f"{type(exc).__name__}: {exc}")
        return results

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("serving /healthz /readyz /metrics on port %d", self.port)
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
