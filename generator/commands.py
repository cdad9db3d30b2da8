"""The offline commands of msctl (render, validate, crd, watch), registered on the one parser
built by the CLI boundary (`sync.cli`), and the input/render options other commands share.

Kept light on purpose: `msctl render` in CI must start fast, so heavy modules (and never the
Kubernetes client) are imported only inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from generator import naming
from generator.errors import EXIT_OK, DriftFound, UsageError

if TYPE_CHECKING:
    from generator.sources import Impact

Handler = Callable[[argparse.Namespace], int]


class Commands(Protocol):
    """What `ArgumentParser.add_subparsers()` returns, as far as registering commands goes."""

    def add_parser(self, name: str, *args: Any, **kwargs: Any) -> argparse.ArgumentParser: ...


def namespace_name(text: str) -> str:
    """An argparse type for a namespace flag: refused unless a namespace could have it."""
    problem = naming.namespace_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def add_input(parser: argparse.ArgumentParser) -> None:
    """The -f/--filename, -n/--namespace and --templates options every source command takes."""
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="append",
        required=True,
        metavar="PATH",
        help="ModelServing file, folder (searched recursively for *.yaml, *.yml, *.json) "
        "or - for stdin; repeatable. Multi-document YAML and v1 Lists are read whole.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default="default",
        type=namespace_name,
        help="namespace for ModelServings that do not name one (default: %(default)s)",
    )
    parser.add_argument(
        "--templates",
        metavar="DIR",
        type=Path,
        help="folder of templates overlaid on the built-in ones: a file there replaces the "
        "built-in of the same name and may {%% extends %%} it (see templates/README.md)",
    )


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """The options that change what a ModelServing renders to."""
    parser.add_argument(
        "--owner-uid",
        metavar="UID",
        help="add owner references to this ModelServing UID (default: metadata.uid if present); "
        "for a LeaderWorkerSet, the LWS UID that owns the ModelServing it renders to",
    )
    parser.add_argument(
        "--no-podgroups",
        dest="podgroups",
        action="store_false",
        help="do not emit Volcano PodGroups (nor annotate pods for them) even when the "
        "scheduler is volcano; use when the cluster has no PodGroup CRD",
    )
    parser.add_argument(
        "--no-subgroup-policy",
        dest="subgroup_policy",
        action="store_false",
        help="leave spec.subGroupPolicy out of PodGroups (Volcano older than 1.14)",
    )


def register(commands: Commands, exit_codes: str, watch_impact: Impact | None = None) -> None:
    """Add render, validate, crd and watch; `exit_codes` is the table for their epilogs.

    `watch_impact`: how `msctl watch` states the rollout impact of a change of pods. The CLI
    boundary passes the one `sync` provides (the daemon's planner, simulated), so the watch
    says exactly what `msctl plan --from` would, without the generator importing `sync`."""
    raw = argparse.RawDescriptionHelpFormatter
    render = commands.add_parser(
        "render",
        help="turn ModelServings into the manifests they stand for",
        description="Render ModelServings into Pods, headless Services and Volcano PodGroups, "
        "in apply order (PodGroups, Services, then pods by group, role, instance, index). "
        "A LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) renders as the ModelServing the LWS "
        "bridge of `msctl run --lws-bridge` makes of it, followed by that ModelServing's "
        "objects (owned by the LWS with --owner-uid or metadata.uid; the children carry no "
        "owner references, the ModelServing's uid being unknown before it exists). "
        "Other documents pass through unchanged, so the command can sit in a pipeline. "
        "Output is deterministic: the same input gives the same bytes.",
        epilog=exit_codes + "\n\nexamples:\n"
        "  msctl render -f examples/prefill-decode.yaml\n"
        "  msctl render -f manifests/ --output-dir rendered/\n"
        "  msctl render -f manifests/ --output-dir rendered/ --check   # CI drift gate\n"
        "  kustomize build . | msctl render -f - | kubectl apply -f -",
        formatter_class=raw,
    )
    add_input(render)
    add_render_options(render)
    render.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: a multi-document stream; json: one v1 List (default: %(default)s)",
    )
    render.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        help="write one file per object under DIR/<namespace>/<modelserving>/ instead of "
        "stdout; each ModelServing folder is replaced whole, all or nothing",
    )
    render.add_argument(
        "--check",
        action="store_true",
        help="with --output-dir: write nothing; exit 4 and show the differences when DIR "
        "does not hold exactly what the sources render",
    )
    render.set_defaults(handler=_render)

    validate = commands.add_parser(
        "validate",
        help="check ModelServings (and LeaderWorkerSets) without rendering",
        description="Apply defaults and check every ModelServing against the schema and the "
        "admission rules; report every violation of every document, then exit 2 if any. "
        "A LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) is checked as the ModelServing it "
        "maps to, its fields named by their LWS paths; fields the mapping cannot honour are "
        "warned about on stderr.",
        epilog=exit_codes,
        formatter_class=raw,
    )
    add_input(validate)
    validate.set_defaults(handler=_validate)

    crd = commands.add_parser(
        "crd",
        help="print the ModelServing CustomResourceDefinition",
        description="Print the ModelServing CRD (the same as crds/ in the repository), ready "
        "for kubectl apply --server-side -f -.",
    )
    crd.set_defaults(handler=_crd)

    watch = commands.add_parser(
        "watch",
        help="re-render on every save of a ModelServing or template",
        description="Render once, then watch the -f files and folders, the --templates folder "
        "and the built-in templates, and re-render on every save: one line per change, naming "
        "the objects added, removed or changed (with the JSON-patch paths that moved), and "
        "when pods changed, the rollout that change would start (as msctl plan --from). A broken "
        "spec or template prints the same error as render and keeps watching; the last good "
        "output stays in place until the next good save. Ctrl-C stops (exit code 0).",
        epilog="examples:\n"
        "  msctl watch -f examples/prefill-decode.yaml --templates my-templates/\n"
        "  msctl watch -f manifests/ --output-dir rendered/",
        formatter_class=raw,
    )
    add_input(watch)
    add_render_options(watch)
    watch.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        help="also write every good render to DIR/<namespace>/<modelserving>/, as render "
        "--output-dir does; without it, only the change summaries are printed",
    )
    watch.set_defaults(handler=_watch, impact=watch_impact)


def _render(args: argparse.Namespace) -> int:
    from generator import output, sources  # noqa: PLC0415

    if args.check and args.output_dir is None:
        raise UsageError("--check needs --output-dir DIR (the folder to compare)")
    if args.output_dir is not None and args.output_dir.exists() and not args.output_dir.is_dir():
        raise UsageError(f"--output-dir {args.output_dir}: not a folder")
    result = sources.render_sources(args)
    if args.output_dir is None:
        objects = result.objects()
        text = output.to_json(objects) if args.output == "json" else output.to_yaml(objects)
        sys.stdout.write(text)
        return EXIT_OK
    if args.check:
        if sources.report_drift(args.output_dir, result.bundles):
            raise DriftFound()  # the report on stdout says it all
        return EXIT_OK
    try:
        output.write_bundles(args.output_dir, result.bundles)
    except OSError as err:
        # write_bundles swaps folders in only once all files are written: nothing changed.
        where = f" ({err.filename})" if err.filename else ""
        raise UsageError(
            f"--output-dir {args.output_dir}: cannot write{where}: {err.strerror}"
        ) from None
    skipped = len(result.passthrough)
    for bundle in result.bundles:
        _note(f"wrote {len(bundle.objects)} objects to {args.output_dir / bundle.folder}")
    if skipped:
        _note(
            f"{skipped} document(s) of other kinds not written (they pass through on stdout only)"
        )
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from generator import sources  # noqa: PLC0415

    _, items = sources.load_inputs(args)
    bridged = sum(1 for item in items if item.lws is not None)
    count = sum(1 for item in items if item.ms is not None) - bridged
    _note(
        f"{count} ModelServing(s) and {bridged} LeaderWorkerSet(s) valid"
        if bridged
        else f"{count} ModelServing(s) valid"
    )
    return EXIT_OK


def _crd(args: argparse.Namespace) -> int:
    from generator import output  # noqa: PLC0415
    from generator.crd import modelserving_crd  # noqa: PLC0415

    sys.stdout.write(output.to_yaml([modelserving_crd()]))
    return EXIT_OK


def _watch(args: argparse.Namespace) -> int:
    from generator import watch  # noqa: PLC0415 - imports watchfiles, kept off the render path

    return watch.run(args)


def diff_folder(args: argparse.Namespace) -> int:
    """`diff --against DIR`: the drift report of render --check, always exit 0 when shown."""
    from generator import sources  # noqa: PLC0415

    if args.against is None:
        raise UsageError(
            "diff needs --against DIR: the folder written by msctl render --output-dir DIR"
        )
    sources.report_drift(args.against, sources.render_sources(args).bundles)
    return EXIT_OK


def _note(message: str) -> None:
    print(message, file=sys.stderr)
