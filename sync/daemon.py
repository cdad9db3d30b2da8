"""The daemon (`msctl run`): controller, leader election, probes, metrics, clean shutdown.

With leader election, only the replica holding the Lease runs the controller; a replica that
loses the Lease stops its workers and exits with code 1 so that Kubernetes restarts it as a
fresh follower (its cache and in-flight decisions may be stale), as controller-runtime does.
SIGTERM or SIGINT stops everything and exits 0, releasing the Lease so a standby takes over at
once.

With `--shards N` every replica runs the controller, caches included, but reconciles only the
ModelServings of the shards it holds (`sync.shards`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType

from generator.templating import TemplateSet
from sync import kube
from sync.controller import Controller, Options
from sync.health import HealthServer
from sync.leader import LeaderElector
from sync.lws_bridge import LwsBridge
from sync.metrics import DaemonMetrics
from sync.outcomes import ReconcileOutcome
from sync.shards import Sharder, shard_of
from sync.templatewatch import TemplateWatch

log = logging.getLogger("msctl.daemon")
EXIT_LOST_LEADERSHIP = 1


@dataclass(frozen=True)
class DaemonOptions:
    kubeconfig: str | None  # None: in-cluster service account
    context: str | None
    namespace: str | None  # None: every namespace
    templates: TemplateSet
    workers: int
    api_concurrency: int
    identity: str
    api_qps: float
    health_address: str
    health_port: int
    leader_elect: bool
    lease_namespace: str
    lease_name: str
    lws_bridge: bool = False
    lease_seconds: int = 15
    renew_seconds: float = 10.0
    retry_seconds: float = 2.0
    shards: int = 1  # > 1: reconcile only the shards this replica holds


class Daemon:
    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.stop = threading.Event()
        self.metrics = DaemonMetrics()
        self.client = kube.Kube.connect(
            options.kubeconfig,
            options.context,
            pool=options.api_concurrency + 8,
            qps=options.api_qps,
        )
        self.lease_client: kube.Kube | None = None
        self.sharder = self._sharder() if options.shards > 1 else None
        self.controller = Controller(
            self.client,
            options.templates,
            Options(
                namespace=options.namespace,
                workers=options.workers,
                api_concurrency=options.api_concurrency,
                identity=options.identity,
                owns=self.sharder.owns if self.sharder is not None else None,
            ),
            on_reconciled=self._reconciled,
        )
        self.bridge = (
            LwsBridge(
                self.client,
                options.templates,
                options.namespace,
                identity=options.identity,
                owns=self.sharder.owns if self.sharder is not None else None,
            )
            if options.lws_bridge
            else None
        )
        self.leading = False
        self.failed = False
        self.metrics.api_calls.set_source(self._calls)
        self.metrics.stalled.set_source(self.controller.stalled)
        self.metrics.cached_objects.set_source(
            lambda: {kind: float(len(store)) for kind, store in self.controller.stores.items()}
        )
        self.metrics.modelservings.set_source(self.controller.stores["ModelServing"].all)

    def _lease_client(self) -> kube.Kube:
        # Its own client, so that renewals never queue behind the controller's requests.
        options = self.options
        self.lease_client = kube.Kube.connect(
            options.kubeconfig, options.context, pool=2, timeout=options.renew_seconds
        )
        return self.lease_client

    def _sharder(self) -> Sharder:
        options = self.options
        return Sharder(
            self._lease_client(),
            options.lease_namespace,
            options.lease_name,
            options.identity,
            options.shards,
            lease_seconds=options.lease_seconds,
            renew_seconds=options.renew_seconds,
            retry_seconds=options.retry_seconds,
            on_acquired=lambda _: self._resync(),
            on_released=self._drained,
        )

    def _resync(self) -> None:
        self.controller.resync()
        if self.bridge is not None:
            self.bridge.resync()

    def _drained(self, shard: int) -> None:
        """Return once no reconcile of the shard is in flight, of ModelServings or (with the
        LWS bridge) of LeaderWorkerSets (bounded by the renew deadline: the lease expires for
        the others only later)."""
        n = self.options.shards

        def of_shard(key: str) -> bool:
            return shard_of(key, n) == shard

        deadline = time.monotonic() + self.options.renew_seconds
        while time.monotonic() < deadline and (
            self.controller.busy_with(of_shard)
            or (self.bridge is not None and self.bridge.busy_with(of_shard))
        ):
            time.sleep(0.05)

    def _calls(self) -> dict[str, float]:
        calls = self.client.call_counts()
        if self.lease_client is not None:
            calls.update(self.lease_client.call_counts())
        return {verb: float(n) for verb, n in calls.items()}

    def _reconciled(self, result: ReconcileOutcome, seconds: float) -> None:
        self.metrics.reconciled(result, seconds)
        if result == "error":
            self.metrics.errors.labels("reconcile").inc()
        self.metrics.queue_depth.set(len(self.controller.queue))

    def _ready(self) -> bool:
        if self.options.leader_elect and not self.leading:
            return not self.stop.is_set()  # a standby is ready to take over
        return self.controller.synced()

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        self.stop.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        health = HealthServer(
            self.options.health_address,
            self.options.health_port,
            self.metrics,
            healthy=lambda: not self.stop.is_set(),
            ready=self._ready,
        )
        health.start()
        templates = self._watch_templates()
        try:
            if self.sharder is not None:
                return self._shard(self.sharder)
            return self._lead() if self.options.leader_elect else self._serve()
        finally:
            if templates is not None:
                templates.stop()
            health.stop()
            self.client.close()
            log.info("stopped")

    def _start_controller(self) -> None:
        try:
            self.controller.start()
        except (TimeoutError, kube.ApiError) as err:
            log.error("controller could not start: %s", err)
            self.failed = True
            self.stop.set()
            return
        if self.bridge is not None:
            self.bridge.start()  # acts only while the LeaderWorkerSet CRD exists
        self.leading = True
        log.info("controller running", extra={"namespace": self.options.namespace or "(all)"})

    def _serve(self) -> int:
        self._start_controller()
        self.stop.wait()
        self._stop_controller()
        return 1 if self.failed else 0

    def _watch_templates(self) -> TemplateWatch | None:
        folder = self.options.templates.user_dir
        if folder is None:
            return None
        watch = TemplateWatch(folder, self.controller.set_templates)
        watch.start()
        return watch

    def _stop_controller(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.controller.stop()

    def _shard(self, sharder: Sharder) -> int:
        self._start_controller()
        campaign = threading.Thread(target=sharder.run, args=(self.stop,), name="shards")
        campaign.start()
        self.stop.wait()
        campaign.join(self.options.renew_seconds * 2)  # hands every shard over
        self._stop_controller()
        sharder.client.close()
        return 1 if self.failed else 0

    def _lead(self) -> int:
        options = self.options
        # The elector bounds each of its requests by the renew deadline itself.
        lease_client = self._lease_client()
        elector = LeaderElector(
            lease_client,
            options.lease_namespace,
            options.lease_name,
            options.identity,
            lease_seconds=options.lease_seconds,
            renew_seconds=options.renew_seconds,
            retry_seconds=options.retry_seconds,
        )
        lost = threading.Event()

        def started() -> None:
            # Waiting for the caches here would hold up lease renewals.
            self.metrics.leader.set(1)
            threading.Thread(target=self._start_controller, name="start", daemon=True).start()

        def stopped() -> None:
            self.leading = False
            self.metrics.leader.set(0)
            self._stop_controller()
            if not self.stop.is_set():
                lost.set()

        campaign = threading.Thread(
            target=elector.run, args=(self.stop, started, stopped), name="leader", daemon=True
        )
        campaign.start()
        while campaign.is_alive() and not self.stop.is_set():
            self.stop.wait(0.5)
        self.stop.set()
        campaign.join(options.renew_seconds + 5)
        lease_client.close()
        if lost.is_set():
            log.error("lost the leader lease; exiting so that a fresh process campaigns again")
            return EXIT_LOST_LEADERSHIP
        return 1 if self.failed else 0
