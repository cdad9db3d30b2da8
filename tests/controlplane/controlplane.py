#!/usr/bin/env python3
"""Start and stop a real Kubernetes control plane for tests: etcd, kube-apiserver and
(optionally) kube-controller-manager, all on loopback, all state in one folder.

Normally used through the `up`, `down` and `status` scripts beside this file. Standard
library only, so that it runs with any Python 3.10+ and needs no virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD_SCRIPT = HERE / "build"
VOLCANO_CRD = HERE / "volcano-podgroups-crd.yaml"
# The real LeaderWorkerSet CRD, from the sigs.k8s.io/lws Go module at this version (cached).
LWS_VERSION = os.environ.get("LWS_VERSION", "v0.7.0")
LWS_MODULE = "sigs.k8s.io/lws"
LWS_CRD_PATH = "config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml"
STATE_FILE = "state.json"
INFO_CONFIGMAP = "msctl-test-control-plane"
DEFAULT_CONTROLLERS = "garbage-collector-controller,namespace-controller"
# Names kube-controller-manager accepts for the garbage collector (old alias, current name).
GC_NAMES = {"garbagecollector", "garbage-collector-controller", "*"}
SERVICE_CIDR = "10.0.0.0/24"
LOG_TAIL_LINES = 40


class ControlPlaneError(Exception):
    """A failure worth a clear one-paragraph message rather than a traceback."""


def log(msg: str) -> None:
    print(f"controlplane: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Processes


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of pid, or None if it is gone or a zombie.

    Stored next to each pid so that `down` never signals an unrelated process that got a
    recycled pid after a reboot or a long pause.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are fixed.
    rest = stat[stat.rindex(")") + 2 :].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def is_ours(pid: int, start_time: int) -> bool:
    return proc_start_time(pid) == start_time


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proc:
    name: str
    pid: int
    start_time: int
    log: str


@dataclass
class State:
    dir: str
    bin_dir: str
    etcd_url: str
    server: str
    kubeconfig: str
    controllers: list[str]
    procs: list[Proc] = field(default_factory=list)

    def save(self) -> None:
        data = {**self.__dict__, "procs": [p.__dict__ for p in self.procs]}
        path = Path(self.dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
        for p in self.procs:
            # Plain pid files too, for people who want `kill $(cat DIR/etcd.pid)`.
            (Path(self.dir) / f"{p.name}.pid").write_text(f"{p.pid}\n")

    @staticmethod
    def load(directory: Path) -> State:
        raw = json.loads((directory / STATE_FILE).read_text())
        procs = [Proc(**p) for p in raw.pop("procs")]
        return State(**raw, procs=procs)


def spawn(state: State, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
    log_path = Path(state.dir) / f"{name}.log"
    with log_path.open("ab") as out:
        # A new session: the processes must outlive `up` and must not receive the Ctrl-C
        # that a person types in the terminal that ran `up`.
        popen = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=state.dir,
        )
    start = proc_start_time(popen.pid)
    if start is None:
        popen.wait()
        raise ControlPlaneError(
            f"{name} exited at once with code {popen.returncode}:\n{tail(log_path)}"
        )
    state.procs.append(Proc(name, popen.pid, start, str(log_path)))
    state.save()
    return popen


def stop_procs(state: State, timeout: float, skip_pid: int | None = None) -> None:
    """TERM every live process of the control plane, KILL the ones still there after timeout."""
    live = [p for p in state.procs if p.pid != skip_pid and is_ours(p.pid, p.start_time)]
    # Clients first, etcd last: the API server then shuts down cleanly instead of logging
    # storage errors for every open watch.
    waves = [[p for p in live if p.name != "etcd"], [p for p in live if p.name == "etcd"]]
    for wave in waves:
        for p in wave:
            with suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        remaining = list(wave)
        while remaining and time.monotonic() < deadline:
            remaining = [p for p in remaining if is_ours(p.pid, p.start_time)]
            if remaining:
                time.sleep(0.05)
        for p in remaining:
            log(f"{p.name} (pid {p.pid}) ignored SIGTERM for {timeout:g}s, sending SIGKILL")
            with suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
        while any(is_ours(p.pid, p.start_time) for p in remaining):
            time.sleep(0.05)


# --------------------------------------------------------------------------------------
# PKI


OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {sans}
authorityKeyIdentifier = keyid,issuer
subjectKeyIdentifier = hash
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid,issuer
"""


def openssl(*args: str) -> None:
    res = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{res.stderr.strip()}")


def make_pki(pki: Path) -> None:
    if shutil.which("openssl") is None:
        raise ControlPlaneError("the openssl command is needed to make test certificates")
    pki.mkdir(parents=True, exist_ok=True)
    sans = ",".join(
        [
            "DNS:localhost",
            "IP:127.0.0.1",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "IP:10.0.0.1",
        ]
    )
    cnf = pki / "openssl.cnf"
    cnf.write_text(OPENSSL_CONFIG.format(sans=sans))
    # P-256 keys: generating four RSA keys would cost more than the rest of the set-up.
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    days = "3650"
    openssl(
        "req", "-x509", "-config", str(cnf), "-extensions", "ca", *newkey,
        "-days", days, "-subj", "/CN=msctl-test-ca",
        "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
    )  # fmt: skip
    leaves = {
        "apiserver": ("/CN=kube-apiserver", "server"),
        "admin": ("/O=system:masters/CN=msctl-test-admin", "client"),
        # system:masters because --use-service-account-credentials=false makes every
        # controller act as this identity, and the garbage collector must be able to list,
        # watch and delete every resource type, custom resources included; the bootstrap
        # system:kube-controller-manager role does not grant that.
        "kcm": ("/O=system:masters/CN=system:kube-controller-manager", "client"),
    }
    for name, (subject, ext) in leaves.items():
        csr = pki / f"{name}.csr"
        openssl(
            "req", "-new", "-config", str(cnf), *newkey, "-subj", subject,
            "-keyout", str(pki / f"{name}.key"), "-out", str(csr),
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"),
            "-CAkey", str(pki / "ca.key"), "-set_serial", f"0x{secrets.token_hex(16)}",
            "-days", days, "-extfile", str(cnf), "-extensions", ext,
            "-out", str(pki / f"{name}.crt"),
        )  # fmt: skip
        csr.unlink()
    openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", str(pki / "sa.key"),
    )  # fmt: skip
    openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    # JSON is valid YAML; every kubeconfig reader accepts it.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "msctl-test",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "msctl-test",
                "context": {"cluster": "msctl-test", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "msctl-test",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


# --------------------------------------------------------------------------------------
# API access with the standard library


class Api:
    def __init__(self, server: str, pki: Path) -> None:
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body or text); never raises for HTTP error statuses."""
        req = urllib.request.Request(self.server + path, data=body, method=method)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
            err.close()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, path: str) -> bool:
        try:
            status, _ = self.request("GET", path, timeout=2.0)
        except (OSError, ssl.SSLError):
            return False
        return status == 200


def readyz(api: Api) -> Callable[[], bool]:
    return lambda: api.ok("/readyz")


def wait_for(
    what: str,
    check: Callable[[], bool],
    deadline: float,
    procs: dict[str, subprocess.Popen[bytes]],
    state: State,
) -> None:
    """Poll check() until it holds; fail at once if one of procs has died."""
    while True:
        for name, popen in procs.items():
            if popen.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {popen.returncode} while waiting for {what}.\n"
                    f"--- last lines of {state.dir}/{name}.log ---\n"
                    f"{tail(Path(state.dir) / f'{name}.log')}"
                )
        if check():
            return
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"--- last lines of {p.log} ---\n{tail(Path(p.log))}" for p in state.procs
            )
            raise ControlPlaneError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)


def yaml_documents(text: str) -> Iterator[str]:
    """Split a YAML stream on `---` lines, dropping documents with nothing but comments.

    The documents go to the API server as application/yaml, so no YAML library is needed.
    """
    for doc in re.split(r"^---[ \t]*(?:#.*)?$", text, flags=re.MULTILINE):
        meaningful = [
            line for line in doc.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
        if meaningful and meaningful != ["..."]:
            yield doc


def install_crds(
    api: Api, files: list[Path], deadline: float, procs: dict[str, subprocess.Popen[bytes]],
    state: State,
) -> list[str]:  # fmt: skip
    names: list[str] = []
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for path in files:
        for i, doc in enumerate(yaml_documents(path.read_text()), start=1):
            status, body = api.request("POST", crd_path, doc.encode(), "application/yaml")
            if status != 201:
                msg = body.get("message", body) if isinstance(body, dict) else body
                raise ControlPlaneError(
                    f"installing document {i} of {path} failed (HTTP {status}): {msg}\n"
                    "Only CustomResourceDefinitions (apiextensions.k8s.io/v1) are installed."
                )
            names.append(body["metadata"]["name"])

    def established(name: str) -> Callable[[], bool]:
        def check() -> bool:
            status, body = api.request("GET", f"{crd_path}/{name}")
            if status != 200 or not isinstance(body, dict):
                return False
            conds = (body.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        return check

    for name in names:
        wait_for(f"CRD {name} to be Established", established(name), deadline, procs, state)
    return names


# --------------------------------------------------------------------------------------
# up


def free_ports(n: int) -> list[int]:
    # Hold all sockets open until every port is chosen so that the n ports differ.
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def find_binaries() -> Path:
    if not BUILD_SCRIPT.exists():
        raise ControlPlaneError(f"{BUILD_SCRIPT} is missing")
    res = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=None, text=True, check=False
    )
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        raise ControlPlaneError(
            f"{BUILD_SCRIPT} failed (exit {res.returncode}); its messages are above"
        )
    bin_dir = Path(lines[-1])
    for exe in ("etcd", "kube-apiserver"):
        if not os.access(bin_dir / exe, os.X_OK):
            raise ControlPlaneError(f"{BUILD_SCRIPT} printed {bin_dir}, but {exe} is not there")
    return bin_dir


@contextmanager
def step(what: str) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    log(f"{what} ({time.monotonic() - t0:.2f}s)")


def etcd_args(bin_dir: Path, d: Path, client: int, peer: int) -> list[str]:
    etcd = str(bin_dir / "etcd")
    usage = subprocess.run([etcd, "--help"], capture_output=True, text=True, check=False)
    args = [
        etcd,
        "--name=msctl-test",
        f"--data-dir={d / 'etcd-data'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=msctl-test=http://127.0.0.1:{peer}",
        "--log-level=warn",
    ]
    # Test data is thrown away anyway; skipping fsync makes every write cheap.
    if "--unsafe-no-fsync" in usage.stdout:
        args.append("--unsafe-no-fsync")
    return args


def apiserver_args(
    bin_dir: Path, d: Path, *, pki: Path, etcd_port: int, port: int, gc: bool
) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        # No service-account controller runs, so no namespace gets a `default` account;
        # with the plugin on, every pod creation would be rejected for lack of it.
        "--disable-admission-plugins=ServiceAccount",
        # Without a garbage collector the API server must not add the orphan /
        # foregroundDeletion finalizers that only the collector removes.
        f"--enable-garbage-collector={'true' if gc else 'false'}",
        # The kubernetes Service endpoint would be 127.0.0.1, which Endpoints reject.
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def kcm_args(bin_dir: Path, d: Path, controllers: list[str]) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={d / 'kcm.kubeconfig'}",
        f"--controllers={','.join(controllers)}",
        "--use-service-account-credentials=false",
        "--leader-elect=false",
        # Nothing probes its health endpoint; not serving saves a port and a certificate.
        "--secure-port=0",
        "--v=1",
    ]


def gc_probe(api: Api) -> Callable[[], bool]:
    """Readiness check of the garbage collector by its effect: a ConfigMap owned by a
    deleted ConfigMap must disappear. Version-independent, unlike parsing its log."""
    base = "/api/v1/namespaces/kube-system/configmaps"
    owner = {"metadata": {"name": "msctl-gc-probe-owner"}}
    status, body = api.request("POST", base, json.dumps(owner).encode())
    if status != 201:
        raise ControlPlaneError(f"creating the GC probe ConfigMap failed ({status}): {body}")
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "msctl-gc-probe-owner",
        "uid": body["metadata"]["uid"],
    }
    dependent = {"metadata": {"name": "msctl-gc-probe-dependent", "ownerReferences": [ref]}}
    status, body = api.request("POST", base, json.dumps(dependent).encode())
    if status != 201:
        raise ControlPlaneError(f"creating the GC probe dependent failed ({status}): {body}")
    api.request("DELETE", f"{base}/msctl-gc-probe-owner")

    def gone() -> bool:
        status, _ = api.request("GET", f"{base}/msctl-gc-probe-dependent")
        return status == 404

    return gone


def lws_crd() -> Path:
    """The LeaderWorkerSet CRD of sigs.k8s.io/lws@LWS_VERSION, fetched once with the go
    command (`go mod download`) and cached beside the binaries."""
    root = Path(os.environ.get("KUBE_TESTBIN") or Path.home() / ".cache" / "msctl-testbin")
    cached = root / f"lws-{LWS_VERSION}" / Path(LWS_CRD_PATH).name
    if cached.is_file():
        return cached
    if shutil.which("go") is None:
        raise ControlPlaneError("the go command is needed to fetch the LeaderWorkerSet CRD")
    res = subprocess.run(
        ["go", "mod", "download", "-json", f"{LWS_MODULE}@{LWS_VERSION}"],
        capture_output=True, text=True, check=False, cwd=root if root.is_dir() else None,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    try:
        info = json.loads(res.stdout)
    except json.JSONDecodeError:
        info = {"Error": res.stderr.strip() or f"exit {res.returncode}"}
    if info.get("Error") or not info.get("Dir"):
        raise ControlPlaneError(
            f"go mod download {LWS_MODULE}@{LWS_VERSION} failed: {info.get('Error')}"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    shutil.copyfile(Path(info["Dir"]) / LWS_CRD_PATH, tmp)
    tmp.replace(cached)
    return cached


def crd_files(extra: list[Path]) -> list[Path]:
    crds_dir = REPO / "crds"
    files = sorted(crds_dir.glob("*.yaml")) if crds_dir.is_dir() else []
    if not files:
        log(f"no CRDs in {crds_dir} (folder missing or empty), skipping them")
    return [*files, VOLCANO_CRD, lws_crd(), *extra]


def start(d: Path, args: argparse.Namespace) -> State:
    bin_dir = find_binaries()
    # The budget starts after the build: a cold build alone takes minutes.
    t_start = time.monotonic()
    deadline = t_start + args.timeout
    controllers = [c for c in args.controllers.split(",") if c] if args.kcm else []
    if controllers and not os.access(bin_dir / "kube-controller-manager", os.X_OK):
        raise ControlPlaneError(
            f"kube-controller-manager is not in {bin_dir}; rebuild with WITH_KCM=1 or start "
            "without it (MSCTL_CP_KCM=0 / --no-controller-manager)"
        )
    pki = d / "pki"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    state = State(str(d), str(bin_dir), "", "", str(d / "kubeconfig"), controllers)

    for attempt in range(3):
        etcd_port, peer_port, api_port = free_ports(3)
        state.etcd_url = f"http://127.0.0.1:{etcd_port}"
        state.server = f"https://127.0.0.1:{api_port}"
        (d / "etcd-data").mkdir(mode=0o700, exist_ok=True)
        procs["etcd"] = spawn(state, "etcd", etcd_args(bin_dir, d, etcd_port, peer_port))
        if attempt == 0:
            # Certificates are made while etcd boots; both take a fraction of a second.
            with step("certificates made"):
                make_pki(pki)
        write_kubeconfig(d / "kubeconfig", state.server, pki, "admin")
        write_kubeconfig(d / "kcm.kubeconfig", state.server, pki, "kcm")
        gc = bool(GC_NAMES.intersection(controllers))
        procs["apiserver"] = spawn(
            state,
            "apiserver",
            apiserver_args(bin_dir, d, pki=pki, etcd_port=etcd_port, port=api_port, gc=gc),
        )
        api = Api(state.server, pki)
        try:
            with step(f"kube-apiserver ready at {state.server}"):
                wait_for("kube-apiserver /readyz", readyz(api), deadline, procs, state)
            break
        except ControlPlaneError as err:
            # Another program may have taken one of the ports between choosing and binding.
            logs = tail(d / "etcd.log", 200) + tail(d / "apiserver.log", 200)
            if "address already in use" not in logs or attempt == 2:
                raise
            log(f"a port was taken meanwhile, retrying with new ports ({err})".splitlines()[0])
            stop_procs(state, timeout=5)
            state.procs.clear()
            procs.clear()
            shutil.rmtree(d / "etcd-data", ignore_errors=True)
            for name in ("etcd", "apiserver"):
                (d / f"{name}.log").rename(d / f"{name}.log.attempt{attempt + 1}")

    with step("namespace default exists"):
        wait_for("namespace default", lambda: api.ok("/api/v1/namespaces/default"), deadline,
                 procs, state)  # fmt: skip
    with step("CRDs established"):
        crds = install_crds(api, crd_files(args.crd), deadline, procs, state)
    log(f"CRDs: {', '.join(crds)}")

    if controllers:
        # Started after the CRDs exist: the garbage collector discovers resource types at
        # start and then only every 30 s, and it cannot see an owner it does not watch.
        procs["kcm"] = spawn(state, "kcm", kcm_args(bin_dir, d, controllers))
        if GC_NAMES.intersection(controllers):
            with step("garbage collector working"):
                wait_for("the garbage collector to delete a dependent of a deleted owner",
                         gc_probe(api), deadline, procs, state)  # fmt: skip

    info = {
        "metadata": {"name": INFO_CONFIGMAP},
        "data": {
            "dir": str(d),
            "controllers": ",".join(controllers),
            "binDir": str(bin_dir),
            "etcd": state.etcd_url,
        },
    }
    status, body = api.request(
        "POST", "/api/v1/namespaces/kube-system/configmaps", json.dumps(info).encode()
    )
    if status != 201:
        raise ControlPlaneError(f"writing the {INFO_CONFIGMAP} ConfigMap failed: {body}")
    log(f"control plane up in {time.monotonic() - t_start:.2f}s")
    return state


def start_watchdog(state: State, parent: int) -> None:
    # A crashed or SIGKILLed test run cannot run `down`; the watchdog does it instead so
    # that no etcd/apiserver is left behind holding half a gigabyte.
    popen = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "_watchdog", state.dir, str(parent)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    start_time = proc_start_time(popen.pid)
    if start_time is not None:
        state.procs.append(Proc("watchdog", popen.pid, start_time, ""))
        state.save()


def cmd_up(args: argparse.Namespace) -> int:
    d = Path(args.dir).resolve()
    if (d / STATE_FILE).exists():
        state = State.load(d)
        if any(is_ours(p.pid, p.start_time) for p in state.procs):
            raise ControlPlaneError(
                f"{d} already holds a running control plane; stop it first: {HERE}/down {d}"
            )
    if d.exists() and any(d.iterdir()) and not (d / STATE_FILE).exists():
        raise ControlPlaneError(f"{d} exists and is not empty; give a new or empty folder")
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    try:
        state = start(d, args)
    except BaseException as err:
        # Keep the folder and its logs for the post-mortem, but leave no process behind.
        if (d / STATE_FILE).exists():
            stop_procs(State.load(d), timeout=5)
        if isinstance(err, ControlPlaneError):
            msg = f"{err}\n(logs kept in {d}; remove with: {HERE}/down {d})"
            raise ControlPlaneError(msg) from err
        raise
    if args.stop_with:
        start_watchdog(state, args.stop_with)
    log(f"use it:  export KUBECONFIG={state.kubeconfig}")
    log(f"stop it: {HERE}/down {d}")
    print(state.kubeconfig, flush=True)
    return 0


# --------------------------------------------------------------------------------------
# down / status / watchdog


def load_state(d: Path) -> State:
    if not (d / STATE_FILE).exists():
        raise ControlPlaneError(
            f"{d} has no {STATE_FILE}: not a folder made by {HERE}/up (nothing stopped, "
            "nothing removed)"
        )
    return State.load(d)


def cmd_down(args: argparse.Namespace) -> int:
    d = Path(args.dir).resolve()
    if not d.exists():
        log(f"{d} does not exist; nothing to stop")
        return 0
    t0 = time.monotonic()
    state = load_state(d)
    stop_procs(state, timeout=args.timeout)
    if args.keep:
        log(f"stopped in {time.monotonic() - t0:.2f}s; kept {d}")
    else:
        shutil.rmtree(d)
        log(f"stopped and removed {d} in {time.monotonic() - t0:.2f}s")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    d = Path(args.dir).resolve()
    state = load_state(d)
    running = 0
    for p in state.procs:
        alive = is_ours(p.pid, p.start_time)
        running += alive
        print(f"{p.name:10} pid {p.pid:<8} {'running' if alive else 'gone'}")
    print(f"server     {state.server}")
    print(f"kubeconfig {state.kubeconfig}")
    return 0 if running == len(state.procs) else 1


def cmd_watchdog(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    parent = args.parent
    parent_start = proc_start_time(parent)
    while parent_start is not None and proc_start_time(parent) == parent_start:
        if not (d / STATE_FILE).exists():
            return 0  # stopped by `down` already
        time.sleep(1)
    if (d / STATE_FILE).exists():
        stop_procs(State.load(d), timeout=10, skip_pid=os.getpid())
        shutil.rmtree(d, ignore_errors=True)
    return 0


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.lower() not in ("0", "false", "no", "off")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="controlplane",
        description="A real Kubernetes control plane on loopback for tests (no mocks).",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    up = sub.add_parser(
        "up",
        prog="up",
        help="start etcd, kube-apiserver and kube-controller-manager",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Start etcd, kube-apiserver and (unless disabled) kube-controller-manager on free loopback
ports with all state, pids and logs in DIR; install the repository's crds/*.yaml, the
Volcano PodGroup CRD and the LeaderWorkerSet CRD (sigs.k8s.io/lws); print the kubeconfig
path on the last line of stdout.

Binaries come from tests/controlplane/build (cached; the first build takes minutes).

environment:
  MSCTL_CP_KCM=0            do not start kube-controller-manager (no garbage collection,
                            namespaces never finish deleting)
  MSCTL_CP_CONTROLLERS=...  controllers to run (default: garbage-collector-controller,
                            namespace-controller)
  MSCTL_CP_TIMEOUT=SECONDS  start-up timeout, build excluded (default: 60)

example:
  export KUBECONFIG=$(tests/controlplane/up /tmp/cp | tail -1)
  ...
  tests/controlplane/down /tmp/cp""",
    )
    up.add_argument("dir", metavar="DIR", help="new or empty folder for state and logs")
    up.add_argument(
        "--no-controller-manager",
        dest="kcm",
        action="store_false",
        default=env_flag("MSCTL_CP_KCM", True),
        help="do not start kube-controller-manager",
    )
    up.add_argument(
        "--controllers",
        default=os.environ.get("MSCTL_CP_CONTROLLERS", DEFAULT_CONTROLLERS),
        help="comma-separated kube-controller-manager controllers (default: %(default)s)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("MSCTL_CP_TIMEOUT", "60")),
        help="seconds to wait for readiness, build excluded (default: %(default)s)",
    )
    up.add_argument(
        "--crd",
        type=Path,
        action="append",
        default=[],
        help="another CRD file to install (repeatable)",
    )
    up.add_argument(
        "--stop-with",
        type=int,
        metavar="PID",
        help="stop the control plane and remove DIR when process PID ends (for test runners)",
    )
    up.set_defaults(func=cmd_up)

    down = sub.add_parser(
        "down",
        prog="down",
        help="stop what `up DIR` started and remove DIR",
        description="Stop exactly the processes `up DIR` started (SIGTERM, then SIGKILL after "
        "--timeout seconds) and remove DIR.",
    )
    down.add_argument("dir", metavar="DIR")
    down.add_argument("--timeout", type=float, default=10.0, help="seconds before SIGKILL")
    down.add_argument("--keep", action="store_true", help="keep DIR (logs, data)")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser(
        "status", prog="status", help="show the processes of DIR (exit 1 unless all run)"
    )
    status.add_argument("dir", metavar="DIR")
    status.set_defaults(func=cmd_status)

    watchdog = sub.add_parser("_watchdog")
    watchdog.add_argument("dir")
    watchdog.add_argument("parent", type=int)
    watchdog.set_defaults(func=cmd_watchdog)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ControlPlaneError as err:
        print(f"controlplane {args.cmd}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"controlplane {args.cmd}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
