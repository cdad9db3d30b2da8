"""The Kubernetes API, as plain JSON over the client's authenticated connection pool.

The only module that imports the `kubernetes` package: it is used for what it does well
(kubeconfig and in-cluster credentials, token refresh, TLS settings); requests go through
`sync.transport` (watches and proxied connections through the client's urllib3 pool), and
requests and responses stay plain dicts, which avoids the client's slow model
(de)serialisation and lets the rest of the daemon work with the same dicts the renderer
produces. HTTP failures become the typed errors below; callers decide between retry
(Transient) and report (the rest).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
import yaml

from generator.kinds import Object
from generator.naming import FIELD_MANAGER, LWS_API_GROUP, LWS_KIND, LWS_PLURAL
from sync.transport import Broken, Endpoint, Transport


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name)}"
        return base + (f"/{sub}" if sub else "")


PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
EVENTS = Resource("", "v1", "events", "Event")
REVISIONS = Resource("apps", "v1", "controllerrevisions", "ControllerRevision")
PODGROUPS = Resource("scheduling.volcano.sh", "v1beta1", "podgroups", "PodGroup")
MODELSERVINGS = Resource("workload.serving.volcano.sh", "v1alpha1", "modelservings", "ModelServing")
LEADERWORKERSETS = Resource(LWS_API_GROUP, "v1", LWS_PLURAL, LWS_KIND)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CRDS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)
# How long request headers (the bearer token among them) are reused before they are rebuilt:
# far below any token's lifetime; the generated client refreshes tokens when asked.
HEADERS_SECONDS = 10.0
BY_KIND = {r.kind: r for r in (PODS, SERVICES, REVISIONS, PODGROUPS, MODELSERVINGS, EVENTS)}


class ConfigError(Exception):
    """The kubeconfig (or the in-cluster service account) cannot be used to connect."""


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: a precondition (resourceVersion, UID) failed, or the object already exists."""

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


class Gone(ApiError):
    """410: a watch's resourceVersion is too old; relist."""


class Invalid(ApiError):
    """422: the object was rejected by validation."""


class Transient(ApiError):
    """Worth retrying: 429, 5xx, or the connection failed."""


def _error(status: int, body: bytes) -> ApiError:
    try:
        doc = json.loads(body)
        reason, message = str(doc.get("reason", "")), str(doc.get("message", ""))
    except (ValueError, AttributeError):
        reason, message = "", body.decode(errors="replace")[:500]
    kind: type[ApiError] = {404: NotFound, 409: Conflict, 410: Gone, 422: Invalid}.get(
        status, Transient if status == 429 or status >= 500 else ApiError
    )
    return kind(status, reason, message)


class WatchStream:
    """The events of one watch request; `close()` (from any thread) ends the iteration."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._closed = False
        # Once the iteration has handed the connection back to the pool, another request
        # may be using it: close() must not shut that one down.
        self._released = False
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            shutdown = getattr(self._response, "shutdown", None)
            if shutdown is None or self._released:
                return
            # Unblocks a read in progress on another thread. That read may have failed and
            # closed the connection a moment ago (urllib3 then raises ValueError, the socket
            # OSError), which ends the iteration just as well.
            with contextlib.suppress(OSError, ValueError):
                shutdown()

    def __iter__(self) -> Iterator[tuple[str, Object]]:
        buffer = b""
        try:
            for chunk in self._response.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        raise _error(int(obj.get("code", 500)), json.dumps(obj).encode())
                    yield kind, obj
        except (urllib3.exceptions.HTTPError, OSError) as err:
            if not self._closed:
                raise Transient(0, "WatchInterrupted", str(err)) from None
        finally:
            with self._lock:
                self._released = True
                self._response.release_conn()


class RateLimiter:
    """A token bucket shared by a client's threads (client-go's QPS and burst)."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(burst, 1)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
            self._at = now
            self._tokens -= 1.0
            delay = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if delay > 0:
            self._sleep(delay)


class Kube:
    """A thread-safe JSON client; `calls` counts requests by verb for the metrics."""

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = 30.0,
        field_manager: str = FIELD_MANAGER,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`limiter`: spread requests out so a large reconcile cannot flood the API server.

        Requests other than watches go through `sync.transport` when the configuration
        allows (see `_endpoint`), the rest through the generated client's urllib3 pool."""
        configuration = api_client.configuration
        try:
            endpoint = _endpoint(configuration)
        except (OSError, ValueError, ssl.SSLError) as err:
            raise ConfigError(f"TLS settings for {configuration.host}: {err}") from None
        pool = configuration.connection_pool_maxsize or 32
        self._transport = Transport(endpoint, pool) if endpoint is not None else None
        self._client = api_client
        self._timeout = timeout
        self.field_manager = field_manager
        self._limiter = limiter
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._auth: tuple[float, str, dict[str, str]] = (-HEADERS_SECONDS, "", {})

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        pool: int = 32,
        timeout: float = 30.0,
        qps: float = 0.0,
        burst: int = 0,
    ) -> Kube:
        """From a kubeconfig file, or in-cluster service-account credentials when None.

        `qps` > 0 limits requests per second (with bursts of `burst`); 0: no limit.
        """
        from kubernetes import client, config  # noqa: PLC0415 - kept off the render path

        configuration = client.Configuration()
        try:
            if kubeconfig is None:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                if not Path(kubeconfig).is_file():
                    raise ConfigError(f"kubeconfig {kubeconfig}: no such file")
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context, client_configuration=configuration
                )
        # The loader raises its own ConfigException for what it checks, and whatever the YAML
        # parser, file reads or base64 decoding raise for the rest.
        except (config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as err:
            source = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster service account"
            raise ConfigError(f"{source}: {err}") from None
        configuration.connection_pool_maxsize = pool
        limiter = RateLimiter(qps, burst or int(qps * 2)) if qps > 0 else None
        return cls(client.ApiClient(configuration), timeout=timeout, limiter=limiter)

    def _count(self, verb: str) -> None:
        with self._lock:
            self.calls[verb] += 1

    def call_counts(self) -> Counter[str]:
        """A consistent copy of `calls`, safe to read while other threads send requests."""
        with self._lock:
            return self.calls.copy()

    def _headers(self) -> tuple[str, dict[str, str]]:
        """The server's base URL and the headers every request carries (the bearer token
        among them), from the generated client's plumbing (its host, credentials and token
        refresh; not public API: pyproject.toml pins kubernetes to the major that has it).
        Kept for HEADERS_SECONDS: rebuilding them cost more than the rest of a request."""
        at, base, headers = self._auth
        now = time.monotonic()
        if now - at >= HEADERS_SECONDS:
            _, url, fresh, _, _ = self._client.param_serialize(
                "GET",
                "/",
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            base, headers = url[:-1], dict(fresh)
            self._auth = (now, base, headers)
        return base, headers

    def _request(self, verb: str, path: str, query: Mapping[str, Any] | None) -> str:
        """The request target (path and query), counted and rate-limited."""
        self._count(verb)
        if self._limiter is not None and verb != "watch":
            self._limiter.wait()
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        return path

    def _send(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Status and body of a request that is not a watch."""
        target = self._request(verb, path, query)
        base, headers = self._headers()
        wait = self._timeout if timeout is None else timeout
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers = {**headers, "Content-Type": content_type}
        if self._transport is not None:
            try:
                status, answer = self._transport.request(method, target, headers, data, wait)
            except Broken as err:
                raise Transient(0, "ConnectionFailed", str(err)) from None
        else:
            response = self._urllib3(method, base + target, headers, data, wait, stream=False)
            status, answer = response.status, response.data
        if status >= 400:
            raise _error(status, answer)
        return status, answer

    def _stream(self, path: str, query: Mapping[str, Any], timeout: float) -> WatchStream:
        target = self._request("watch", path, query)
        base, headers = self._headers()
        response = self._urllib3("GET", base + target, headers, None, timeout, stream=True)
        if response.status >= 400:
            raise _error(response.status, response.read())
        return WatchStream(response)

    def _urllib3(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        data: bytes | None,
        wait: float,
        *,
        stream: bool,
    ) -> urllib3.BaseHTTPResponse:
        try:
            response: urllib3.BaseHTTPResponse = self._client.rest_client.pool_manager.request(
                method,
                url,
                body=data,
                headers=dict(headers),
                preload_content=not stream,
                timeout=urllib3.Timeout(connect=min(10, wait), read=wait),
            )
        except urllib3.exceptions.HTTPError as err:
            raise Transient(0, "ConnectionFailed", str(err)) from None
        return response

    def _json(self, verb: str, method: str, path: str, **kwargs: Any) -> Object:
        _, answer = self._send(verb, method, path, **kwargs)
        parsed: Object = json.loads(answer) if answer else {}
        return parsed

    # --- reads

    def get(
        self, resource: Resource, namespace: str | None, name: str, *, timeout: float | None = None
    ) -> Object:
        """`timeout`: seconds to wait for the answer, instead of the client's default."""
        return self._json("get", "GET", resource.path(namespace, name), timeout=timeout)

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        field_selector: str | None = None,
        transform: Callable[[Object], Object] | None = None,
    ) -> tuple[list[Object], str]:
        """All items (pages followed) and the list's resourceVersion, to watch from;
        `transform` is applied to each item as its page arrives."""
        items: list[Object] = []
        token: str | None = None
        while True:
            doc = self._json(
                "list",
                "GET",
                resource.path(namespace),
                query={
                    "labelSelector": selector,
                    "fieldSelector": field_selector,
                    "limit": 500,
                    "continue": token,
                },
            )
            for item in doc.get("items", ()):
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(transform(item) if transform is not None else item)
            token = doc.get("metadata", {}).get("continue")
            if not token:
                return items, str(doc.get("metadata", {}).get("resourceVersion", ""))

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> WatchStream:
        """(type, object) events until the server closes the stream; Gone when too old."""
        query = {
            "watch": "true",
            "labelSelector": selector,
            "fieldSelector": field_selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        return self._stream(resource.path(namespace), query, timeout_seconds + 30)

    # --- writes

    def create(
        self,
        resource: Resource,
        namespace: str | None,
        obj: Mapping[str, Any],
        *,
        timeout: float | None = None,
    ) -> Object:
        return self._json(
            "create",
            "POST",
            resource.path(namespace),
            query={"fieldManager": self.field_manager},
            body=obj,
            timeout=timeout,
        )

    def post(self, resource: Resource, namespace: str | None, obj: Mapping[str, Any]) -> None:
        """Create, without decoding the answer: for Events, which nothing reads back."""
        self._send(
            "create",
            "POST",
            resource.path(namespace),
            query={"fieldManager": self.field_manager},
            body=obj,
        )

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        ops: Sequence[Mapping[str, Any]],
        *,
        sub: str = "",
    ) -> Object:
        """An RFC 6902 JSON patch; put a `test` op first to guard against concurrent writers."""
        return self._patch(resource, namespace, name, sub, list(ops), "json-patch")

    def merge_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        sub: str = "",
    ) -> Object:
        return self._patch(resource, namespace, name, sub, patch, "merge-patch")

    def _patch(
        self, resource: Resource, namespace: str | None, name: str, sub: str, body: Any, kind: str
    ) -> Object:
        return self._json(
            "patch",
            "PATCH",
            resource.path(namespace, name, sub),
            query={"fieldManager": self.field_manager},
            body=body,
            content_type=f"application/{kind}+json",
        )

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        obj: Mapping[str, Any],
        *,
        sub: str = "",
        timeout: float | None = None,
    ) -> Object:
        """PUT; the object's resourceVersion makes it fail with Conflict if it changed."""
        name = obj["metadata"]["name"]
        return self._json(
            "update",
            "PUT",
            resource.path(namespace, name, sub),
            query={"fieldManager": self.field_manager},
            body=obj,
            timeout=timeout,
        )

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        grace_seconds: int | None = None,
    ) -> Object:
        """Delete in the background; with `uid`, only that incarnation of the object.

        Returns what the API answered: the object (still there while it terminates
        gracefully) or a Status."""
        body: Object = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        return self._json("delete", "DELETE", resource.path(namespace, name), body=body)

    def dry_run_create(
        self, resource: Resource, namespace: str | None, obj: Mapping[str, Any]
    ) -> Object:
        return self._json(
            "create",
            "POST",
            resource.path(namespace),
            query={"dryRun": "All", "fieldValidation": "Strict"},
            body=obj,
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._client.close()


def _endpoint(configuration: Any) -> Endpoint | None:
    """Where `sync.transport` sends requests, with the TLS settings the generated client
    would use; None for what only urllib3 handles (a proxy, a pinned hostname to assert,
    custom socket options)."""
    if configuration.proxy or configuration.socket_options is not None:
        return None
    if configuration.assert_hostname not in (None, True):
        return None
    url = urlsplit(configuration.host)
    if url.scheme not in ("http", "https") or not url.hostname:
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme == "http":
        return Endpoint(url.hostname, port, None, url.hostname)
    context = ssl.create_default_context(
        cafile=configuration.ssl_ca_cert or None,
        cadata=configuration.ca_cert_data or None,
    )
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    server_name = configuration.tls_server_name or url.hostname
    return Endpoint(url.hostname, port, context, server_name)
