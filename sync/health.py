"""The daemon's HTTP endpoints: /healthz, /readyz and /metrics, on one port.

Part of the daemon shell: the kubelet probes /healthz (restart a wedged process) and /readyz
(no traffic or rollout progress until the caches are synced), Prometheus scrapes /metrics.
Standard library only; the server runs on a daemon thread so it never keeps the process alive,
and it logs through `logging` at debug level instead of http.server's lines on stderr.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger("msctl.health")

Check = Callable[[], bool]


class Exposition(Protocol):
    content_type: str  # of what render() returns

    def render(self) -> str: ...


def run_check(check: Check, failure: str) -> tuple[HTTPStatus, str]:
    """A probe's status and body; a check that raises fails with the error as the reason."""
    try:
        ok = check()
    except Exception as err:  # any failure of a check is the probe's answer, not a crash
        log.debug("%s check raised", failure, exc_info=True)
        return HTTPStatus.SERVICE_UNAVAILABLE, f"{failure}: {type(err).__name__}: {err}\n"
    if ok:
        return HTTPStatus.OK, "ok\n"
    return HTTPStatus.SERVICE_UNAVAILABLE, f"{failure}\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Rebinding the probe port right after a restart must not fail on TIME_WAIT sockets.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: HealthServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Usually a client that hung up; the default prints a traceback on stderr.
        log.debug("error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # A client that connects and sends nothing must not hold a thread for ever.
    timeout = 10

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        content_type = "text/plain; charset=utf-8"
        if path == "/healthz":
            status, text = run_check(owner.healthy, "unhealthy")
        elif path == "/readyz":
            status, text = run_check(owner.ready, "not ready")
        elif path == "/metrics":
            try:
                status, text = HTTPStatus.OK, owner.metrics.render()
                content_type = owner.metrics.content_type
            except Exception as err:  # a broken collector fails the scrape, not the daemon
                log.warning("rendering metrics failed", exc_info=True)
                status, text = HTTPStatus.INTERNAL_SERVER_ERROR, f"metrics failed: {err}\n"
        else:
            status, text = HTTPStatus.NOT_FOUND, "not found\n"
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class HealthServer:
    """Serves the probes and metrics until stop(); start() returns the bound port."""

    def __init__(
        self, address: str, port: int, metrics: Exposition, healthy: Check, ready: Check
    ) -> None:
        self.address = address
        self.port = port
        self.metrics = metrics
        self.healthy = healthy
        self.ready = ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        if self._server is not None:
            raise RuntimeError("the health server is already running")
        server = _Server((self.address, self.port), self)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="health", daemon=True
        )
        self._server = server
        self._thread.start()
        port: int = server.server_address[1]
        log.info(
            "serving /healthz, /readyz and /metrics", extra={"address": self.address, "port": port}
        )
        return port

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        thread.join()
