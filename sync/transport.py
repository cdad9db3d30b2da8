"""Transport: the daemon's unary requests (everything but watches), HTTP/1.1 over kept-alive
connections to the one API server.

Part of the daemon's shell, under `sync.kube`. The daemon sends one to two requests per pod
it creates, and through urllib3 and `http.client` each cost about 0.8 ms of CPU, most of it
in layers that parse headers with the `email` package, normalise pool keys and rebuild retry
and timeout objects (`benchmarks/scale_bench.py --profile`). This module writes a request
in one `sendall` and reads the answer with a buffered reader: the status line, the few
headers that frame the body (Content-Length, chunked Transfer-Encoding, Connection) and the
body. What it does not handle (a proxy) stays with urllib3 (`Kube.connect` decides).

A pooled connection the server closed while idle reads as ready (EOF) before it is reused,
and is dropped; any other failure closes the connection and raises `Broken`, which the
client turns into a transient error (the reconcile retries), as it did with urllib3.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

IDLE_CHECK_SECONDS = 1.0


class Broken(Exception):
    """The connection failed: refused, reset, timed out or answered what is not HTTP/1.x."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None  # None: plain HTTP
    server_name: str  # the name the certificate must carry (SNI)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"


class _Connection:
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        raw = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.tls is not None:
                raw = endpoint.tls.wrap_socket(raw, server_hostname=endpoint.server_name)
        except BaseException:
            raw.close()
            raise
        self.sock: socket.socket = raw
        self.reader: BinaryIO = raw.makefile("rb")
        self.idle_since = time.monotonic()

    def stale(self) -> bool:
        """An idle kept-alive connection has nothing to read; readable means the server
        closed it (or sent what nobody asked for): either way it cannot be reused. Checked
        only after IDLE_CHECK_SECONDS: select() gives the interpreter lock away, and waiting
        for it back cost more than any other step of a request under load, while a server
        does not close a connection it answered on a moment ago (when it does, the request
        fails as transient and the reconcile retries)."""
        if time.monotonic() - self.idle_since < IDLE_CHECK_SECONDS:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Transport:
    """Thread-safe: each request takes a connection from the pool (or opens one) and gives
    it back once the answer is read, unless the server asked to close it."""

    def __init__(self, endpoint: Endpoint, pool: int = 32) -> None:
        self.endpoint = endpoint
        self._idle: list[_Connection] = []
        self._max_idle = pool
        self._lock = threading.Lock()
        # A client dropped without close() (a test's, a short-lived one) still closes its
        # idle connections, as the generated client's pool does when it is collected.
        weakref.finalize(self, _close_all, self._idle)

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> tuple[int, bytes]:
        """(status, body) of one request; `target` is the path with its query."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.endpoint.authority}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        connection = self._take(timeout)
        try:
            connection.sock.settimeout(timeout)
            connection.sock.sendall(head + body if body else head)
            status, data, keep = _read_response(connection.reader)
        except (OSError, ValueError, Broken) as err:
            connection.close()
            raise Broken(str(err) or type(err).__name__) from None
        if keep:
            self._give(connection)
        else:
            connection.close()
        return status, data

    def _take(self, timeout: float) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                break
            if not connection.stale():
                return connection
            connection.close()
        try:
            return _Connection(self.endpoint, min(10.0, timeout))
        except (OSError, ssl.SSLError) as err:
            raise Broken(f"cannot connect to {self.endpoint.authority}: {err}") from None

    def _give(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)


def _close_all(idle: list[_Connection]) -> None:
    while idle:
        idle.pop().close()


def _read_response(reader: BinaryIO) -> tuple[int, bytes, bool]:
    """(status, body, the connection may be reused) of the answer on `reader`."""
    while True:
        line = reader.readline(65537)
        if not line:
            raise Broken("the server closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise Broken(f"not an HTTP/1.x answer: {line[:80]!r}")
        status = int(parts[1])
        length, chunked, keep = -1, False, parts[0] != b"HTTP/1.0"
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise Broken("the answer ended within its headers")
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep = b"close" not in value.lower()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            continue
        if chunked:
            return status, _read_chunked(reader), keep
        if length >= 0:
            return status, _read_exactly(reader, length), keep
        if status in (204, 304):
            return status, b"", keep
        return status, reader.read(), False  # delimited by the end of the connection


def _read_exactly(reader: BinaryIO, n: int) -> bytes:
    data = reader.read(n)
    if len(data) != n:
        raise Broken(f"the answer ended after {len(data)} of {n} bytes")
    return data


def _read_chunked(reader: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = reader.readline(65537)
        if not size_line:
            raise Broken("the answer ended within its chunks")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers: none that matter here
            return b"".join(chunks)
        chunks.append(_read_exactly(reader, size))
        _read_exactly(reader, 2)  # the CRLF after each chunk
