"""The daemon's probe and metrics endpoints (sync.health), served for real on a free port."""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from sync.health import HealthServer
from sync.metrics import DaemonMetrics


@dataclass
class State:
    healthy: bool = True
    ready: bool = False
    metrics: DaemonMetrics = field(default_factory=DaemonMetrics)


@dataclass
class Response:
    status: int
    body: str
    content_type: str


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def serve(state: State) -> Iterator[Callable[..., str]]:
    """Start a server (checks from `state` unless given) and return its base URL."""
    servers: list[HealthServer] = []

    def start(**checks: Callable[[], bool]) -> str:
        server = HealthServer(
            "127.0.0.1",
            0,
            state.metrics,
            checks.get("healthy", lambda: state.healthy),
            checks.get("ready", lambda: state.ready),
        )
        servers.append(server)
        return f"http://127.0.0.1:{server.start()}"

    yield start
    for server in servers:
        server.stop()


def get(url: str, method: str = "GET") -> Response:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Response(
                response.status, response.read().decode(), response.headers["Content-Type"]
            )
    except urllib.error.HTTPError as err:
        with err:
            return Response(err.code, err.read().decode(), err.headers["Content-Type"])


def test_healthz_follows_the_liveness_check(serve: Callable[..., str], state: State) -> None:
    base = serve()
    assert (get(base + "/healthz").status, get(base + "/healthz").body) == (200, "ok\n")
    state.healthy = False
    assert (get(base + "/healthz").status, get(base + "/healthz").body) == (503, "unhealthy\n")


def test_readyz_is_503_with_a_reason_until_ready(serve: Callable[..., str], state: State) -> None:
    base = serve()
    assert (get(base + "/readyz").status, get(base + "/readyz").body) == (503, "not ready\n")
    state.ready = True
    assert get(base + "/readyz").status == 200


def test_a_check_that_raises_fails_the_probe_with_the_error(serve: Callable[..., str]) -> None:
    def broken() -> bool:
        raise RuntimeError("cache lost")

    base = serve(ready=broken)
    response = get(base + "/readyz?verbose=1")
    assert (response.status, response.body) == (503, "not ready: RuntimeError: cache lost\n")


def test_metrics_are_served_in_the_text_format(serve: Callable[..., str], state: State) -> None:
    base = serve()
    state.metrics.reconciled("success", 0.1)
    response = get(base + "/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert response.body == state.metrics.render()
    assert 'msctl_reconciles_total{result="success"} 1' in response.body


def test_a_failing_collector_fails_the_scrape_not_the_server(
    serve: Callable[..., str], state: State
) -> None:
    def lost() -> dict[str, float]:
        raise RuntimeError("cache gone")

    base = serve()
    state.metrics.cached_objects.set_source(lost)
    assert get(base + "/metrics").status == 500
    assert get(base + "/healthz").status == 200


def test_unknown_paths_are_404_and_other_methods_501(serve: Callable[..., str]) -> None:
    base = serve()
    assert get(base + "/").status == 404
    assert get(base + "/healthz", method="POST").status == 501


def test_head_answers_without_a_body(serve: Callable[..., str]) -> None:
    response = get(serve() + "/healthz", method="HEAD")
    assert (response.status, response.body) == (200, "")


def test_requests_are_logged_at_debug_level_and_not_on_stderr(
    serve: Callable[..., str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    base = serve()
    with caplog.at_level(logging.DEBUG, logger="msctl.health"):
        get(base + "/healthz")
        get(base + "/nowhere")
    assert capsys.readouterr().err == ""
    requests = [r for r in caplog.records if "GET /healthz" in r.getMessage()]
    assert requests
    assert requests[0].levelno == logging.DEBUG


def test_stop_frees_the_port_and_can_be_repeated(state: State) -> None:
    server = HealthServer("127.0.0.1", 0, state.metrics, lambda: True, lambda: True)
    port = server.start()
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
    server.stop()
    server.stop()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
