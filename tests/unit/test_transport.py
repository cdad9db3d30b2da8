"""sync.transport against a local socket server that answers scripted bytes: framing of
requests and answers, connection reuse, and every way a connection can fail."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from sync.transport import IDLE_CHECK_SECONDS, Broken, Endpoint, Transport

Handler = Callable[[socket.socket, bytes], bool]  # answers one request; False: close


class Server:
    """Accepts connections; each request (headers and Content-Length body) goes to
    `handler`, which writes the answer and says whether to keep the connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + reader.read(length)
                self.requests.append(request)
                if not self.handler(conn, request):
                    return

    def transport(self, pool: int = 4) -> Transport:
        return Transport(Endpoint("127.0.0.1", self.port, None, "127.0.0.1"), pool)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def start(handler: Handler) -> Server:
        servers.append(Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def replying(*answers: bytes, keep: bool = True) -> Handler:
    def handler(conn: socket.socket, _request: bytes) -> bool:
        conn.sendall(b"".join(answers))
        return keep

    return handler


def test_a_request_is_framed_as_http_1_1_with_its_body(serve: Callable[[Handler], Server]) -> None:
    server = serve(replying(answer(b'{"ok":true}', status="201 Created")))
    status, body = server.transport().request(
        "POST", "/api/v1/pods?x=1", {"Accept": "application/json"}, b'{"a":1}', 5
    )
    assert (status, body) == (201, b'{"ok":true}')
    head, _, sent = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/v1/pods?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Accept: application/json" in lines and b"Content-Length: 7" in lines
    assert sent == b'{"a":1}'


def test_a_kept_alive_connection_serves_the_next_request(
    serve: Callable[[Handler], Server],
) -> None:
    server = serve(replying(answer(b"one")))
    transport = server.transport()
    for _ in range(3):
        assert transport.request("GET", "/", {}, None, 5) == (200, b"one")
    assert server.connections == 1
    assert b"Content-Length" not in server.requests[0]  # a GET without a body


def test_a_chunked_answer_is_joined_and_its_trailers_skipped(
    serve: Callable[[Handler], Server],
) -> None:
    chunked = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    server = serve(replying(answer(chunked, "Transfer-Encoding: chunked")))
    transport = server.transport()
    assert transport.request("GET", "/", {}, None, 5) == (200, b"hello, world")
    assert transport.request("GET", "/", {}, None, 5) == (200, b"hello, world")
    assert server.connections == 1


def test_an_interim_answer_is_skipped(serve: Callable[[Handler], Server]) -> None:
    server = serve(replying(b"HTTP/1.1 100 Continue\r\n\r\n", answer(b"done")))
    assert server.transport().request("PUT", "/", {}, b"x", 5) == (200, b"done")


def test_connection_close_and_http_1_0_are_not_reused(serve: Callable[[Handler], Server]) -> None:
    server = serve(replying(answer(b"a", "Connection: close"), keep=False))
    transport = server.transport()
    transport.request("GET", "/", {}, None, 5)
    transport.request("GET", "/", {}, None, 5)
    assert server.connections == 2
    old = serve(replying(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb", keep=False))
    transport = old.transport()
    assert transport.request("GET", "/", {}, None, 5) == (200, b"b")
    assert transport.request("GET", "/", {}, None, 5) == (200, b"b")
    assert old.connections == 2


def test_an_answer_without_length_ends_with_the_connection(
    serve: Callable[[Handler], Server],
) -> None:
    server = serve(replying(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", keep=False))
    assert server.transport().request("GET", "/", {}, None, 5) == (200, b"until the end")


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    serve: Callable[[Handler], Server],
) -> None:
    server = serve(replying(answer(b"ok"), keep=False))  # closes without saying so
    transport = server.transport()
    transport.request("GET", "/", {}, None, 5)
    time.sleep(IDLE_CHECK_SECONDS + 0.1)  # the close reaches the client; the check is due
    assert transport.request("GET", "/", {}, None, 5) == (200, b"ok")
    assert server.connections == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ended after 5 of 10 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "ended within its headers"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "ended after 2 of 5"),
        (b"", "closed the connection"),
    ],
)
def test_a_broken_answer_is_broken_and_the_connection_dropped(
    serve: Callable[[Handler], Server], reply: bytes, message: str
) -> None:
    server = serve(replying(reply, keep=False))
    transport = server.transport()
    with pytest.raises(Broken, match=message):
        transport.request("GET", "/", {}, None, 5)
    assert transport._idle == []


def test_a_silent_server_times_out(serve: Callable[[Handler], Server]) -> None:
    server = serve(lambda _conn, _request: time.sleep(2) is None)
    started = time.monotonic()
    with pytest.raises(Broken):
        server.transport().request("GET", "/", {}, None, 0.3)
    assert time.monotonic() - started < 1.5


def test_a_refused_connection_is_broken() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    transport = Transport(Endpoint("127.0.0.1", port, None, "127.0.0.1"))
    with pytest.raises(Broken, match=f"cannot connect to 127.0.0.1:{port}"):
        transport.request("GET", "/", {}, None, 1)


def test_concurrent_requests_each_get_a_connection_and_the_pool_keeps_its_size(
    serve: Callable[[Handler], Server],
) -> None:
    def slow(conn: socket.socket, request: bytes) -> bool:
        time.sleep(0.05)
        conn.sendall(answer(request.split(b" ")[1]))
        return True

    server = serve(slow)
    transport = server.transport(pool=2)
    results: list[tuple[int, bytes]] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(transport.request("GET", f"/{i}", {}, None, 5))
        )
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [(200, f"/{i}".encode()) for i in range(6)]
    assert len(transport._idle) == 2
