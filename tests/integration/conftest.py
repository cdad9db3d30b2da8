"""Fixtures for integration tests against a real Kubernetes control plane.

One control plane (etcd + kube-apiserver + kube-controller-manager, built from Go modules
by tests/controlplane/build) serves the whole test session; every test gets its own fresh
namespace. Set MSCTL_TEST_KUBECONFIG to the kubeconfig of a running control plane (for
example one started by hand with tests/controlplane/up) to reuse it and skip start-up.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client import ApiException

from tests.integration.kubelet import Kubelet

REPO = Path(__file__).resolve().parents[2]
CONTROLPLANE = REPO / "tests" / "controlplane"
INFO_CONFIGMAP = "msctl-test-control-plane"
REUSE_ENV = "MSCTL_TEST_KUBECONFIG"
LOGS = ("apiserver", "etcd", "kcm")
LOG_TAIL_LINES = 60
# A cold build of the binaries takes about 5 minutes on 2 cores; start-up itself ~4 s.
UP_TIMEOUT = 45 * 60


@dataclass(frozen=True)
class ControlPlane:
    """The running control plane. str()/os.fspath() give the kubeconfig path."""

    kubeconfig: Path
    controllers: frozenset[str] = frozenset()
    log_dir: Path | None = None
    reused: bool = False

    def __fspath__(self) -> str:
        return str(self.kubeconfig)

    def __str__(self) -> str:
        return str(self.kubeconfig)

    @property
    def garbage_collection(self) -> bool:
        """Owner-reference cascade works (kube-controller-manager's garbage collector)."""
        return bool({"garbagecollector", "garbage-collector-controller", "*"} & self.controllers)

    @property
    def namespace_deletion(self) -> bool:
        """Deleted namespaces are emptied and go away (the namespace controller)."""
        return bool({"namespace", "namespace-controller", "*"} & self.controllers)

    def log_files(self) -> dict[str, Path]:
        if self.log_dir is None:
            return {}
        return {n: self.log_dir / f"{n}.log" for n in LOGS if (self.log_dir / f"{n}.log").exists()}


CONTROL_PLANE_KEY = pytest.StashKey[ControlPlane]()
LOG_START_KEY = pytest.StashKey[dict[str, int]]()
FAILED_KEY = pytest.StashKey[bool]()


def new_client(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient of its own for kubeconfig (the global default configuration is left
    alone, so code under test cannot pick it up by accident)."""
    api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return api_client


def _describe(kubeconfig: Path, reused: bool) -> ControlPlane:
    """Learn what runs from the ConfigMap `up` leaves in kube-system; a control plane
    started some other way has none, and then no controllers are assumed."""
    api = new_client(kubeconfig)
    try:
        cm = client.CoreV1Api(api).read_namespaced_config_map(INFO_CONFIGMAP, "kube-system")
        data = cm.data or {}
    except ApiException as err:
        if err.status != 404:
            raise
        data = {}
    finally:
        api.close()  # type: ignore[no-untyped-call]
    controllers = frozenset(c for c in data.get("controllers", "").split(",") if c)
    log_dir = Path(data["dir"]) if data.get("dir") and Path(data["dir"]).is_dir() else None
    return ControlPlane(kubeconfig, controllers, log_dir, reused)


@pytest.fixture(scope="session")
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """One control plane per test session (or the one MSCTL_TEST_KUBECONFIG names)."""
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        path = Path(reuse)
        if not path.is_file():
            pytest.fail(f"{REUSE_ENV}={reuse}: no such kubeconfig file", pytrace=False)
        cp = _describe(path, reused=True)
        request.config.stash[CONTROL_PLANE_KEY] = cp
        yield cp
        return

    if shutil.which("go") is None:
        pytest.skip(
            "integration tests need the Go toolchain (`go` on PATH) to build kube-apiserver "
            f"and etcd, or {REUSE_ENV} pointing at a running control plane"
        )
    tmp = tmp_path_factory.mktemp("controlplane")
    command = [str(CONTROLPLANE / "up"), str(tmp), "--stop-with", str(os.getpid())]
    try:
        up = subprocess.run(
            command, capture_output=True, text=True, timeout=UP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as err:
        _down(tmp)
        pytest.fail(f"tests/controlplane/up {tmp} took over {UP_TIMEOUT}s:\n{err.stderr!r}")
    if up.returncode != 0:
        _down(tmp)
        pytest.fail(
            f"the test control plane did not start (tests/controlplane/up {tmp} exited "
            f"{up.returncode}):\n{up.stderr}",
            pytrace=False,
        )
    kubeconfig = Path(up.stdout.strip().splitlines()[-1])
    try:
        cp = _describe(kubeconfig, reused=False)
        request.config.stash[CONTROL_PLANE_KEY] = cp
        yield cp
    finally:
        _down(tmp)


def _down(directory: Path) -> None:
    down = subprocess.run(
        [str(CONTROLPLANE / "down"), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if down.returncode != 0:
        raise RuntimeError(f"tests/controlplane/down {directory} failed:\n{down.stderr}")


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient authenticated as cluster admin (system:masters)."""
    api_client = new_client(control_plane.kubeconfig)
    try:
        yield api_client
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")
    return f"t-{slug[:48].rstrip('-')}-{secrets.token_hex(3)}"


@pytest.fixture(autouse=True)
def namespace(
    request: pytest.FixtureRequest, api: client.ApiClient, control_plane: ControlPlane
) -> Iterator[str]:
    """A fresh, uniquely named namespace for every integration test.

    Deleted afterwards when the namespace controller runs (without it a deleted namespace
    would hang in Terminating), but kept when the test failed, for a look by hand.
    """
    name = _namespace_name(request.node.name)
    body: Any = {"metadata": {"name": name, "labels": {"msctl.test/namespace": "true"}}}
    client.CoreV1Api(api).create_namespace(body)
    yield name
    if control_plane.namespace_deletion and not request.node.stash.get(FAILED_KEY, False):
        try:
            client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture
def kubelet(api: client.ApiClient, namespace: str) -> Iterator[Kubelet]:
    """A running kubelet stand-in for the test's namespace: new pods become Ready at once
    and graceful deletions of bound pods finish. Stopped (and its errors raised) after the
    test. Build your own Kubelet(api, namespace, ...) for delays or a pod filter."""
    with Kubelet(api, namespace) as k:
        yield k


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the real kube-apiserver + etcd test control plane"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test in this folder talks to the control plane: `-m "not integration"` skips
    # them all without each test having to say so.
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.integration)


def _log_sizes(cp: ControlPlane) -> dict[str, int]:
    sizes = {}
    for name, path in cp.log_files().items():
        with contextlib.suppress(OSError):
            sizes[name] = path.stat().st_size
    return sizes


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    cp = item.config.stash.get(CONTROL_PLANE_KEY, None)
    if cp is not None:
        item.stash[LOG_START_KEY] = _log_sizes(cp)
    yield
    # The session fixture may only have come up during this setup.
    cp = item.config.stash.get(CONTROL_PLANE_KEY, None)
    if cp is not None and LOG_START_KEY not in item.stash:
        item.stash[LOG_START_KEY] = _log_sizes(cp)


def _log_excerpt(path: Path, start: int) -> str:
    """The last lines the component wrote since the test started (or the plain tail)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            # Cap the read: the API server log of a long test can be large.
            f.seek(max(start, size - 256 * 1024))
            text = f.read().decode(errors="replace")
    except OSError as err:
        return f"(cannot read {path}: {err})"
    lines = text.splitlines()
    if lines:
        return "\n".join(lines[-LOG_TAIL_LINES:])
    with path.open("rb") as f:
        f.seek(max(0, start - 8192))
        before = "\n".join(f.read(8192).decode(errors="replace").splitlines()[-10:])
    return f"(nothing written during this test; the last lines before it:)\n{before}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[FAILED_KEY] = True
        cp = item.config.stash.get(CONTROL_PLANE_KEY, None)
        if cp is not None:
            starts = item.stash.get(LOG_START_KEY, {})
            for name, path in cp.log_files().items():
                report.sections.append(
                    (f"{name} log (last {LOG_TAIL_LINES} lines, {path})",
                     _log_excerpt(path, starts.get(name, 0))),
                )  # fmt: skip
        # Daemons and other subprocesses of a test log into its tmp_path.
        tmp_path = item.funcargs.get("tmp_path") if isinstance(item, pytest.Function) else None
        if isinstance(tmp_path, Path):
            for path in sorted(tmp_path.glob("*.log")):
                report.sections.append(
                    (f"{path.name} (last {LOG_TAIL_LINES} lines)", _log_excerpt(path, 0))
                )
    return report
