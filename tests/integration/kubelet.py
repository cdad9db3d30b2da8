"""A kubelet stand-in for integration tests.

The test control plane has no kubelet and no scheduler, so pods stay Pending forever and a
graceful delete of a pod bound to a node never completes. These helpers play the kubelet's
part through the real API: they write pod status through the `pods/status` subresource,
bind pods through `pods/binding` and finish terminations with a grace-0 delete, exactly the
calls a kubelet and a scheduler make. Nothing is faked on the client side.

Pods are passed around as plain JSON dicts, the way the API server shows them (camelCase
keys, no null fields): `pod["status"]["phase"]`.

Deletion semantics to keep in mind (kube-apiserver, no kubelet):

* a pod without `spec.nodeName` is removed at once by any DELETE;
* a pod with `spec.nodeName` (see `bind`) gets a deletionTimestamp and stays Terminating
  until someone deletes it again with grace period 0 (`finish_deletion`, or `Kubelet`).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes import client, watch
from kubernetes.client import ApiException

__all__ = [
    "Kubelet",
    "bind",
    "bump_restart",
    "condition",
    "fail_pod",
    "finish_deletion",
    "image_pull_backoff",
    "mark_not_ready",
    "mark_ready",
    "pods_ready",
    "read_pod",
    "wait_for",
]

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
# Pod IPs handed out by the stand-in, counted per test process.
_ip_counter = itertools.count(1)
_ip_lock = threading.Lock()

T = TypeVar("T")
Pod = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_ip() -> str:
    with _ip_lock:
        n = next(_ip_counter)
    return f"10.88.{(n // 250) % 250}.{n % 250 + 1}"


def _core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def to_json(api: client.ApiClient, obj: object) -> dict[str, Any]:
    """A client model object as the API server's JSON (camelCase, nulls dropped)."""
    data = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    if not isinstance(data, dict):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    return data


def read_pod(api: client.ApiClient, namespace: str, name: str) -> Pod | None:
    """The pod as JSON, or None if it does not exist."""
    try:
        return to_json(api, _core(api).read_namespaced_pod(name, namespace))
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _read(api: client.ApiClient, namespace: str, name: str) -> Pod:
    pod = read_pod(api, namespace, name)
    if pod is None:
        raise LookupError(f"pod {namespace}/{name} does not exist")
    return pod


def condition(pod: Pod, kind: str) -> str | None:
    """Status ("True"/"False"/"Unknown") of the pod condition `kind`, None if absent."""
    for c in pod.get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            status: str = c.get("status", "")
            return status
    return None


def _conditions(pod: Pod, ready: bool, now: str) -> list[dict[str, Any]]:
    value = "True" if ready else "False"
    wanted = {"PodScheduled": "True", "Initialized": "True", "ContainersReady": value}
    wanted["Ready"] = value
    old = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}
    out = []
    for kind, status in wanted.items():
        # A condition whose status stays keeps its transition time, as with a kubelet.
        same = old.get(kind, {}).get("status") == status
        since = old[kind].get("lastTransitionTime", now) if same else now
        out.append({"type": kind, "status": status, "lastTransitionTime": since})
    return out


def _state(kind: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {kind: detail}


def _containers(pod: Pod) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = pod["spec"]["containers"]
    return containers


def _current_statuses(pod: Pod) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in pod.get("status", {}).get("containerStatuses", [])}


def _container_status(
    container: dict[str, Any], restarts: int, *, ready: bool, state: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "containerID": f"containerd://msctl-test-{container['name']}",
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
    }


def _all_statuses(
    pod: Pod, change: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]
) -> list[dict[str, Any]]:
    """containerStatuses for every container of the spec. The list is atomic in the pod
    API (a patch replaces it whole, unlike conditions, which merge by type), so containers
    that change(container, current_status) leaves alone (None) are sent as they are."""
    current = _current_statuses(pod)
    out = []
    for c in _containers(pod):
        now_status = current.get(c["name"]) or _container_status(
            c, 0, ready=False, state=_state("waiting", {"reason": "ContainerCreating"})
        )
        out.append(change(c, now_status) or now_status)
    return out


def _init_statuses(pod: Pod, now: str) -> list[dict[str, Any]]:
    out = []
    for c in pod["spec"].get("initContainers", []):
        if c.get("restartPolicy") == "Always":  # a sidecar keeps running next to the app
            state = _state("running", {"startedAt": now})
            out.append(_container_status(c, 0, ready=True, state=state))
        else:
            done = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
            state = _state("terminated", done)
            out.append(_container_status(c, 0, ready=False, state=state))
    return out


def _patch_status(api: client.ApiClient, namespace: str, name: str, status: Pod) -> Pod:
    pod = _core(api).patch_namespaced_pod_status(
        name, namespace, {"status": status}, _content_type=STRATEGIC_MERGE
    )
    return to_json(api, pod)


def mark_ready(
    api: client.ApiClient, namespace: str, name: str, *, pod_ip: str | None = None
) -> Pod:
    """Report the pod Running with every container started and ready.

    Conditions PodScheduled, Initialized, ContainersReady and Ready become True; every
    container of the spec gets a running containerStatus with ready true and its restart
    count kept (0 for a new pod); init containers are reported completed. The pod gets an
    IP (pod_ip, the one it already has, or a fresh 10.88.x.y). Works with or without
    spec.nodeName. Returns the updated pod.
    """
    pod = _read(api, namespace, name)
    now = _now()
    ip = pod_ip or pod.get("status", {}).get("podIP") or _next_ip()
    running = _state("running", {"startedAt": now})
    status: dict[str, Any] = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": _conditions(pod, True, now),
        "containerStatuses": _all_statuses(
            pod,
            lambda c, cur: {
                **_container_status(c, cur["restartCount"], ready=True, state=running),
                **({"lastState": cur["lastState"]} if "lastState" in cur else {}),
            },
        ),
    }
    if "startTime" not in pod.get("status", {}):
        status["startTime"] = now
    init = _init_statuses(pod, now)
    if init:
        status["initContainerStatuses"] = init
    return _patch_status(api, namespace, name, status)


def mark_not_ready(api: client.ApiClient, namespace: str, name: str) -> Pod:
    """Keep the pod Running but report its containers, and so the pod, not ready, as a
    failing readiness probe would. Returns the updated pod."""
    pod = _read(api, namespace, name)
    statuses = _all_statuses(pod, lambda _c, cur: {**cur, "ready": False})
    return _patch_status(
        api,
        namespace,
        name,
        {"conditions": _conditions(pod, False, _now()), "containerStatuses": statuses},
    )


def fail_pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    exit_code: int = 1,
    reason: str = "Error",
    message: str = "failed by the test kubelet stand-in",
) -> Pod:
    """Move the pod to phase Failed with every container terminated with exit_code.

    A real kubelet never moves a Failed pod back; the API server (1.36) does not enforce
    that for status writes, so don't call mark_ready on it afterwards."""
    pod = _read(api, namespace, name)
    now = _now()
    done = {
        "exitCode": exit_code,
        "reason": reason,
        "message": message,
        "startedAt": now,
        "finishedAt": now,
    }
    terminated = _state("terminated", done)
    status = {
        "phase": "Failed",
        "reason": reason,
        "message": message,
        "conditions": _conditions(pod, False, now),
        "containerStatuses": _all_statuses(
            pod,
            lambda c, cur: _container_status(c, cur["restartCount"], ready=False, state=terminated),
        ),
    }
    return _patch_status(api, namespace, name, status)


def bump_restart(
    api: client.ApiClient, namespace: str, name: str, container: str | None = None
) -> Pod:
    """Report that a container crashed and was restarted: restartCount + 1, lastState
    terminated (exit 1), now waiting in CrashLoopBackOff and not ready; the pod stays
    Running but not Ready. container=None restarts every container of the spec. Call
    mark_ready afterwards to let it recover (the restart count is kept)."""
    pod = _read(api, namespace, name)
    names = [c["name"] for c in _containers(pod)]
    if container is not None and container not in names:
        raise ValueError(f"pod {namespace}/{name} has no container {container!r} (has {names})")
    now = _now()
    crashed = {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}
    waiting = _state("waiting", {"reason": "CrashLoopBackOff"})

    def crash(c: dict[str, Any], cur: dict[str, Any]) -> dict[str, Any] | None:
        if container is not None and c["name"] != container:
            return None
        st = _container_status(c, cur["restartCount"] + 1, ready=False, state=waiting)
        st["lastState"] = _state("terminated", crashed)
        return st

    statuses = _all_statuses(pod, crash)
    return _patch_status(
        api,
        namespace,
        name,
        {"conditions": _conditions(pod, False, now), "containerStatuses": statuses},
    )


def image_pull_backoff(api: client.ApiClient, namespace: str, name: str) -> Pod:
    """Report the pod stuck pulling its image, as a kubelet does for an image that does not
    exist: still Pending, every container waiting in ImagePullBackOff with the image named."""
    pod = _read(api, namespace, name)

    def stuck(c: dict[str, Any], cur: dict[str, Any]) -> dict[str, Any]:
        message = f'Back-off pulling image "{c.get("image", "")}"'
        waiting = _state("waiting", {"reason": "ImagePullBackOff", "message": message})
        return _container_status(c, cur["restartCount"], ready=False, state=waiting)

    statuses = _all_statuses(pod, stuck)
    return _patch_status(
        api,
        namespace,
        name,
        {"conditions": _conditions(pod, False, _now()), "containerStatuses": statuses},
    )


def bind(api: client.ApiClient, namespace: str, name: str, node: str) -> None:
    """Schedule the pod onto node (which need not exist) as the scheduler does, through
    `pods/binding`. A bound pod is deleted gracefully: it stays Terminating until
    finish_deletion (or a running Kubelet) completes it."""
    body: Any = {
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    # The client cannot deserialize the Status this endpoint answers with, so read raw.
    resp: Any = _core(api).create_namespaced_pod_binding(
        name, namespace, body, _preload_content=False
    )
    try:
        if not 200 <= resp.status < 300:
            raise ApiException(status=resp.status, reason=resp.data.decode(errors="replace"))
    finally:
        resp.release_conn()


def finish_deletion(
    api: client.ApiClient, namespace: str, name: str, *, timeout: float = 10.0
) -> None:
    """Complete a graceful deletion as the kubelet does once the containers have stopped:
    wait (up to timeout seconds) until the pod has a deletionTimestamp, then delete it with
    grace period 0. Returns quietly if the pod is already gone."""

    def terminating() -> Pod | bool:
        pod = read_pod(api, namespace, name)
        if pod is None:
            return True
        return pod if "deletionTimestamp" in pod["metadata"] else False

    found = wait_for(terminating, timeout=timeout, what=f"pod {namespace}/{name} to terminate")
    if isinstance(found, dict):
        _delete_now(api, namespace, name, found["metadata"]["uid"])


def _delete_now(api: client.ApiClient, namespace: str, name: str, uid: str) -> None:
    # The uid precondition keeps a same-named replacement pod from being deleted.
    try:
        _core(api).delete_namespaced_pod(
            name,
            namespace,
            # With a body the API server reads the options from it alone: a
            # grace_period_seconds query parameter next to it would be ignored.
            body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
            ),
        )
    except ApiException as err:
        if err.status not in (404, 409):
            raise


def pods_ready(api: client.ApiClient, namespace: str, names: Iterable[str]) -> bool:
    """True when every named pod exists and has condition Ready=True."""
    for name in names:
        pod = read_pod(api, namespace, name)
        if pod is None or condition(pod, "Ready") != "True":
            return False
    return True


def wait_for(
    check: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call check() until it returns something truthy, and return that. After timeout
    seconds raise TimeoutError naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


class Kubelet:
    """A background kubelet for one namespace: every new pod is (optionally bound to
    node_name and) marked Ready after ready_after seconds, and every graceful deletion of a
    bound pod is finished after terminate_after seconds.

    select(pod) -> bool limits which pods become ready (pod is the JSON dict); pods it
    rejects stay Pending for the test to drive with the helper functions. crash(pod) ->
    (exit code, message) fails a pod at its start instead (phase Failed, containers
    terminated with that code and message), on every start; pull_fails(pod) -> True leaves it
    Pending in ImagePullBackOff. Errors are
    collected and raised by stop(), so a broken stand-in fails the test instead of hanging
    it. Use as a context manager or call start()/stop().
    """

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        *,
        ready_after: float = 0.0,
        terminate_after: float = 0.0,
        node_name: str | None = None,
        finish_deletions: bool = True,
        select: Callable[[Pod], bool] | None = None,
        crash: Callable[[Pod], tuple[int, str] | None] | None = None,
        pull_fails: Callable[[Pod], bool] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.ready_after = ready_after
        self.terminate_after = terminate_after
        self.node_name = node_name
        self.finish_deletions = finish_deletions
        self.select = select
        self.crash = crash  # pod -> (exit code, message): its container exits on every start
        self.pull_fails = pull_fails  # pod -> True: its image cannot be pulled
        self.errors: list[BaseException] = []
        self._started: set[str] = set()  # uids of pods handed to mark_ready
        self._finished: set[str] = set()  # uids of pods whose deletion was finished
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._watch: Any = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Kubelet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("this Kubelet was started already")
        for target, label in ((self._watch_loop, "watch"), (self._act_loop, "act")):
            t = threading.Thread(
                target=target, name=f"kubelet-{label}-{self.namespace}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both threads; raise the first error they met, if any."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._watch is not None:
            # Shuts the watch socket down under the reading thread, which then ends.
            self._watch.stop()
        for t in self._threads:
            t.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            self.errors.append(RuntimeError(f"threads did not stop: {alive}"))
        if self.errors:
            first = self.errors[0]
            raise RuntimeError(
                f"kubelet stand-in for namespace {self.namespace} hit {len(self.errors)} "
                f"error(s), first: {first!r}"
            ) from first

    # -- watching ------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        core = _core(self.api)
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    listing = to_json(self.api, core.list_namespaced_pod(self.namespace))
                    for pod in listing.get("items", []):
                        self._observe(pod)
                    resource_version = listing["metadata"]["resourceVersion"]
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                events = self._watch.stream(
                    core.list_namespaced_pod,
                    self.namespace,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=300,
                )
                for event in events:
                    if event is None:  # the client yields None for blank lines
                        continue
                    pod = event["raw_object"]
                    resource_version = pod["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._observe(pod)
                    if self._stopping.is_set():
                        break
            except ApiException as err:
                if err.status == 410:  # history compacted: list again
                    resource_version = None
                elif not self._stopping.is_set():
                    self.errors.append(err)
                    time.sleep(0.5)
            except Exception as err:
                if not self._stopping.is_set():  # errors caused by stop() are expected
                    self.errors.append(err)
                    time.sleep(0.5)

    def _observe(self, pod: Pod) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        uid, name = meta["uid"], meta["name"]
        if "deletionTimestamp" in meta:
            if self.finish_deletions and spec.get("nodeName") and uid not in self._finished:
                self._finished.add(uid)
                self._later(
                    self.terminate_after,
                    lambda: _delete_now(self.api, self.namespace, name, uid),
                )
            return
        if uid in self._started or pod.get("status", {}).get("phase") != "Pending":
            return
        if self.select is not None and not self.select(pod):
            return
        self._started.add(uid)
        self._later(self.ready_after, lambda: self._start_pod(name, uid))

    # -- acting --------------------------------------------------------------------------

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), action))
            self._cond.notify()

    def _act_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping.is_set():
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        break
                    self._cond.wait(self._queue[0][0] - now if self._queue else None)
                if self._stopping.is_set():
                    return
                _, _, action = heapq.heappop(self._queue)
            try:
                action()
            except Exception as err:
                self.errors.append(err)

    def _start_pod(self, name: str, uid: str) -> None:
        def replaced_or_done() -> bool:
            # The test may have deleted, replaced or failed the pod meanwhile.
            pod = read_pod(self.api, self.namespace, name)
            return (
                pod is None
                or pod["metadata"]["uid"] != uid
                or "deletionTimestamp" in pod["metadata"]
                or pod.get("status", {}).get("phase") != "Pending"
            )

        if replaced_or_done():
            return
        try:
            pod = _read(self.api, self.namespace, name)
            if self.node_name is not None and not pod["spec"].get("nodeName"):
                bind(self.api, self.namespace, name, self.node_name)
            crashed = self.crash(pod) if self.crash is not None else None
            if crashed is not None:
                fail_pod(self.api, self.namespace, name, exit_code=crashed[0], message=crashed[1])
            elif self.pull_fails is not None and self.pull_fails(pod):
                image_pull_backoff(self.api, self.namespace, name)
            else:
                mark_ready(self.api, self.namespace, name)
        except (ApiException, LookupError):
            if not replaced_or_done():
                raise
