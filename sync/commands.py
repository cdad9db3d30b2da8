"""The cluster commands of msctl (run, plan) and the one `diff` command, registered on the one
parser built by the CLI boundary (`sync.cli`).

`diff` lives here because it is both: against a folder it is the generator's offline
`diff_folder`, against a cluster it previews patches. Nothing here imports the Kubernetes
client until a cluster command runs, so `msctl render` starts as fast as without this module.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from generator.commands import Commands, add_input, add_render_options, diff_folder, namespace_name
from generator.errors import EXIT_OK, MsctlError, UsageError

if TYPE_CHECKING:
    from generator.sources import ServingSource
    from sync.preview import Preview

T = TypeVar("T")


class ApiFailure(MsctlError):
    exit_code = 5
    meaning = "the Kubernetes API failed"


def register(commands: Commands, exit_codes: str) -> None:
    """Add diff, run and plan; `exit_codes` is the table for their epilogs."""
    raw = argparse.RawDescriptionHelpFormatter
    diff = commands.add_parser(
        "diff",
        help="show how an output folder differs from what the sources render",
        description="Render the sources and compare the result with DIR, a folder written by "
        "render --output-dir: the same report as render --check, but the exit code is 0 "
        "whether or not there is drift. With --kubeconfig instead of --against: the JSON "
        "patch the daemon would apply to each live object of the ModelServing, and the "
        "objects it would create or delete.",
        epilog=exit_codes + "\n\nexample:\n  msctl diff -f manifests/ --against rendered/",
        formatter_class=raw,
    )
    add_input(diff)
    add_render_options(diff)
    diff.add_argument(
        "--against",
        metavar="DIR",
        type=Path,
        help="the output folder to compare with (as written by render --output-dir DIR)",
    )
    _add_cluster(diff)
    diff.set_defaults(handler=_diff)

    run = commands.add_parser(
        "run",
        help="run the sync daemon: keep ModelServings' objects true to their specs",
        description="Watch ModelServings and their pods, Services, PodGroups and "
        "ControllerRevisions, and keep them as the specs say: create, patch and delete in "
        "rolling-update order, recover failed pods after their grace period, and write status "
        "and Events. Serves /healthz, /readyz and /metrics. SIGTERM stops it cleanly.",
        epilog="examples:\n"
        "  msctl run --kubeconfig ~/.kube/config --namespace llm\n"
        "  msctl run --leader-elect --log-format json      # in a cluster (deploy/)",
        formatter_class=raw,
    )
    _add_run_options(run)
    run.set_defaults(handler=_run)

    plan = commands.add_parser(
        "plan",
        help="show what the daemon would do if a ModelServing file were applied",
        description="Read the live objects of the ModelServing in FILE and print the ordered "
        "steps the daemon would take to make them match FILE (create, patch, delete, each with "
        "its reason, the status write and the pruning of old ControllerRevisions included), "
        "and a pending rollout as waves. Writes nothing. With --from OLD, no cluster: the plan "
        "is made against the objects OLD stands for, fully rolled out and ready, and the "
        "rollout to FILE is played to its end with the daemon's planner, wave by wave.",
        epilog=exit_codes + "\n\nexamples:\n"
        "  msctl plan -f examples/rolling-update.yaml --kubeconfig ~/.kube/config\n"
        "  msctl plan -f examples/rolling-update.yaml -o json | jq '.[0].steps[].verb'\n"
        "  msctl plan -f new.yaml --from old.yaml --ready-after 3m --timeline rollout.svg",
        formatter_class=raw,
    )
    add_input(plan)
    _add_cluster(plan)
    plan.add_argument(
        "--from",
        dest="old_files",
        action="append",
        metavar="OLD",
        help="plan offline, against the ModelServings in OLD (file, folder or -) as if fully "
        "rolled out and ready; they must name the same ModelServings as -f; repeatable",
    )
    plan.add_argument(
        "--ready-after",
        type=_duration,
        metavar="DURATION",
        help="with --from: how long a replaced pod takes to be Ready again, from the deletion "
        "of the old one (90s, 2m, 1m30s; default 90s: a vLLM server of an 8B model on a warm "
        "node; raise it for larger models)",
    )
    plan.add_argument(
        "--timeline",
        type=Path,
        metavar="FILE.svg",
        help="with --from: also draw the rollout into FILE.svg: a row per group (or role "
        "instance), its old, replacing and new spans over time, and the budget",
    )
    plan.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: the numbered steps for people; json: a list with one plan per "
        "ModelServing, every step with its verb, kind, name, reason, wave and patch or object; "
        "with --from also the simulated rollout: waves, units and budgets "
        "(default: %(default)s)",
    )
    plan.set_defaults(handler=_plan)


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config; "
        "`run` inside a cluster uses its service account when neither is set)",
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def _add_run_options(run: argparse.ArgumentParser) -> None:
    _add_cluster(run)
    run.add_argument(
        "-n",
        "--namespace",
        type=namespace_name,
        help="only this namespace (default: all namespaces)",
    )
    run.add_argument("--templates", metavar="DIR", type=Path, help="template overlay folder")
    run.add_argument(
        "--workers", type=_integer(1), default=4, help="concurrent reconciles (default 4)"
    )
    run.add_argument(
        "--api-concurrency",
        type=_integer(1),
        default=16,
        help="concurrent API writes while applying a plan (default 16)",
    )
    run.add_argument(
        "--api-qps",
        type=_rate,
        default=0.0,
        help="at most this many API requests per second, bursts of twice that (default: no "
        "limit); protects a busy API server from large rollouts",
    )
    run.add_argument("--leader-elect", action="store_true", help="run only while holding a Lease")
    run.add_argument(
        "--lws-bridge",
        action="store_true",
        help="also serve LeaderWorkerSets (leaderworkerset.x-k8s.io/v1): each gets a ModelServing "
        "of its name, kept equal to the mapping, and its status from it; active only while "
        "the LeaderWorkerSet CRD exists. Do not use it where the real LWS controller runs: "
        "both would act on every LeaderWorkerSet (its StatefulSets and our ModelServing would "
        "both run the pods, and the two would overwrite each other's status)",
    )
    run.add_argument(
        "--shards",
        type=_integer(1),
        default=1,
        help="split ModelServings (and, with --lws-bridge, LeaderWorkerSets) into this many "
        "shards by namespace/name, one Lease each (<lease-name>-shard-<i>); replicas share them "
        "out and take over those of a replica that died (default 1: no sharding; not with "
        "--leader-elect). Needs list, create, update and delete on Leases (deploy/sharding/)",
    )
    run.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="namespace of the Lease (default: $POD_NAMESPACE, else default)",
    )
    run.add_argument("--lease-name", default="msctl-sync", help="Lease name (default msctl-sync)")
    run.add_argument(
        "--lease-duration",
        type=_integer(1),
        default=15,
        help="seconds a leader's lease lasts without renewal (default 15); the leader renews "
        "every 2/15 of it, exits when it could not renew for 2/3 of it, and a standby takes "
        "over once it has expired",
    )
    run.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
        help="leader-election identity (default: $POD_NAME, else host-pid)",
    )
    run.add_argument("--health-address", default="0.0.0.0", help="probe/metrics address")
    run.add_argument(
        "--health-port",
        type=_integer(0, 65535),
        default=8080,
        help="probe/metrics port; 0 picks a free one",
    )
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--log-level", default="info", help="debug, info, warning or error")


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], refused with the allowed range."""
    allowed = f"an integer of at least {low}" if high is None else f"an integer {low}-{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}")
        return value

    return parse


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of at least 0")
    return value


def _duration(text: str) -> float:
    from sync.core.timestamps import parse_duration  # noqa: PLC0415

    value = parse_duration(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration above 0 (for example 90s, 2m, 1m30s)"
        )
    return value


def _kubeconfig(args: argparse.Namespace, *, in_cluster_ok: bool) -> str | None:
    """The kubeconfig file, or None for in-cluster credentials."""
    if args.kubeconfig:
        return str(args.kubeconfig)
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    default = Path.home() / ".kube" / "config"
    if default.is_file():
        return str(default)
    if in_cluster_ok and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise UsageError(
        "no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG"
        + (" (or run inside a cluster)" if in_cluster_ok else "")
    )


def _connect(make: Callable[[], T]) -> T:
    """`make()`, with a kubeconfig that cannot be used reported as a usage error."""
    from sync import kube  # noqa: PLC0415

    try:
        return make()
    except kube.ConfigError as err:
        raise UsageError(f"cannot connect: {err}") from None


def _previews(args: argparse.Namespace) -> list[Preview]:
    from generator import sources  # noqa: PLC0415
    from sync import kube  # noqa: PLC0415
    from sync.preview import preview  # noqa: PLC0415

    templates, items = sources.load_inputs(args)
    client = _connect(
        lambda: kube.Kube.connect(_kubeconfig(args, in_cluster_ok=False), args.context)
    )
    try:
        return [
            # A LeaderWorkerSet previews as the ModelServing the bridge makes of it.
            preview(
                client,
                templates,
                item.lws.modelserving if item.lws is not None else item.document.body,
                args.namespace,
            )
            for item in items
            if item.ms is not None
        ]
    except kube.ApiError as err:
        raise ApiFailure(f"the Kubernetes API failed: {err}") from None
    finally:
        client.close()


def _plan(args: argparse.Namespace) -> int:
    if args.old_files is not None:
        from sync.offline import offline_previews  # noqa: PLC0415

        if args.kubeconfig is not None or args.context is not None:
            raise UsageError("use either --from OLD or --kubeconfig/--context, not both")
        previews = offline_previews(args)
    elif args.ready_after is not None or args.timeline is not None:
        raise UsageError("--ready-after and --timeline need --from OLD (the offline preview)")
    else:
        previews = _previews(args)
    if args.output == "json":
        doc = [result.to_json() for result in previews]
        sys.stdout.write(json.dumps(doc, sort_keys=True, indent=2) + "\n")
        return EXIT_OK
    for result in previews:
        sys.stdout.write(result.text())
    return EXIT_OK


def watch_impact(before: ServingSource, after: ServingSource) -> str:
    """The rollout impact `msctl watch` prints: the offline preview's summary."""
    from sync.offline import impact  # noqa: PLC0415

    return impact(before, after)


def _diff(args: argparse.Namespace) -> int:
    """Against a folder (--against) unless a cluster is named (--kubeconfig or --context)."""
    if args.kubeconfig is None and args.context is None:
        return diff_folder(args)
    if args.against is not None:
        raise UsageError("use either --against DIR or --kubeconfig, not both")
    for result in _previews(args):
        sys.stdout.write(result.patches())
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from generator import sources  # noqa: PLC0415
    from sync import logs  # noqa: PLC0415
    from sync.daemon import Daemon, DaemonOptions  # noqa: PLC0415

    try:
        logs.configure(args.log_format, args.log_level)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.shards > 1 and args.leader_elect:
        raise UsageError("--shards and --leader-elect exclude each other: shards have leases")
    options = DaemonOptions(
        kubeconfig=_kubeconfig(args, in_cluster_ok=True),
        context=args.context,
        namespace=args.namespace,
        templates=sources.template_set(args.templates),
        workers=args.workers,
        api_concurrency=args.api_concurrency,
        identity=args.identity,
        api_qps=args.api_qps,
        health_address=args.health_address,
        health_port=args.health_port,
        leader_elect=args.leader_elect,
        lws_bridge=args.lws_bridge,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        lease_seconds=args.lease_duration,
        renew_seconds=args.lease_duration * 2 / 3,
        retry_seconds=max(args.lease_duration / 7.5, 0.2),
        shards=args.shards,
    )
    return _connect(lambda: Daemon(options)).run()
