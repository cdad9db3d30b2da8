"""`msctl`: the command line. The only place where errors become messages and exit codes.

Kept light on purpose: `msctl render` in CI must start fast, so heavy modules (and never the
Kubernetes client) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from generator import naming

if TYPE_CHECKING:
    from generator.output import Bundle
    from generator.pipeline import Item, Result
    from generator.templating import TemplateSet

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_INVALID = 2
EXIT_TEMPLATE = 3
EXIT_DRIFT = 4
EXIT_API = 5

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  success
  {EXIT_USAGE}  usage error, or an input file or folder that cannot be read
  {EXIT_INVALID}  invalid input: not YAML/JSON, or a ModelServing that breaks the rules
  {EXIT_TEMPLATE}  a template failed (the message names its file and line)
  {EXIT_DRIFT}  drift: the output folder does not hold what the sources render
  {EXIT_API}  the Kubernetes API failed"""


class Failure(Exception):
    """Ends the command with `code` after printing `lines` to stderr."""

    def __init__(self, code: int, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.code = code
        self.lines = list(lines)


class _Parser(argparse.ArgumentParser):
    # name -> subparser, set on the top-level parser (see command_parser)
    _msctl_commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


Handler = Callable[[argparse.Namespace], int]


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


def _add_render_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--owner-uid",
        metavar="UID",
        help="add owner references to this ModelServing UID (default: metadata.uid if present)",
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="msctl",
        description="Render, check and run Kthena ModelServing workloads "
        "(workload.serving.volcano.sh/v1alpha1): a ModelServing expands into ServingGroups of "
        "roles, each role instance an entry pod, worker pods and a headless Service, with one "
        "Volcano PodGroup per group.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from generator import __version__  # noqa: PLC0415

    parser.add_argument("--version", action="version", version=f"msctl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    render = commands.add_parser(
        "render",
        help="turn ModelServings into the manifests they stand for",
        description="Render ModelServings into Pods, headless Services and Volcano PodGroups, "
        "in apply order (PodGroups, Services, then pods by group, role, instance, index). "
        "Other documents pass through unchanged, so the command can sit in a pipeline. "
        "Output is deterministic: the same input gives the same bytes.",
        epilog=EXIT_CODES + "\n\nexamples:\n"
        "  msctl render -f examples/prefill-decode.yaml\n"
        "  msctl render -f manifests/ --output-dir rendered/\n"
        "  msctl render -f manifests/ --output-dir rendered/ --check   # CI drift gate\n"
        "  kustomize build . | msctl render -f - | kubectl apply -f -",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input(render)
    _add_render_options(render)
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
        help="check ModelServings without rendering",
        description="Apply defaults and check every ModelServing against the schema and the "
        "admission rules; report every violation of every document, then exit 2 if any.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "the objects added, removed or changed (with the JSON-patch paths that moved). A broken "
        "spec or template prints the same error as render and keeps watching; the last good "
        "output stays in place until the next good save. Ctrl-C stops (exit code 0).",
        epilog="examples:\n"
        "  msctl watch -f examples/prefill-decode.yaml --templates my-templates/\n"
        "  msctl watch -f manifests/ --output-dir rendered/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input(watch)
    _add_render_options(watch)
    watch.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        help="also write every good render to DIR/<namespace>/<modelserving>/, as render "
        "--output-dir does; without it, only the change summaries are printed",
    )
    watch.set_defaults(handler=_watch)

    diff = commands.add_parser(
        "diff",
        help="show how an output folder differs from what the sources render",
        description="Render the sources and compare the result with DIR, a folder written by "
        "render --output-dir: the same report as render --check, but the exit code is 0 "
        "whether or not there is drift.",
        epilog=EXIT_CODES + "\n\nexample:\n  msctl diff -f manifests/ --against rendered/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input(diff)
    _add_render_options(diff)
    diff.add_argument(
        "--against",
        metavar="DIR",
        type=Path,
        help="the output folder to compare with (as written by render --output-dir DIR)",
    )
    diff.set_defaults(handler=diff_against)

    parser._msctl_commands = dict(commands.choices)
    return parser


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The subparser of command `name` in a build_parser() parser, to add options to it."""
    commands: dict[str, argparse.ArgumentParser] = getattr(parser, "_msctl_commands", {})
    if name not in commands:
        raise KeyError(f"msctl has no command {name!r}")
    return commands[name]


def template_set(folder: Path | None) -> TemplateSet:
    from generator.templating import TemplateSet  # noqa: PLC0415

    if folder is not None and not folder.is_dir():
        raise Failure(EXIT_USAGE, [f"--templates {folder}: no such folder"])
    return TemplateSet(folder)


def load_inputs(args: argparse.Namespace) -> tuple[TemplateSet, list[Item]]:
    """(template set, loaded items), or a Failure with every problem found."""
    from generator import documents, pipeline  # noqa: PLC0415
    from generator.templating import TemplateError  # noqa: PLC0415

    templates = template_set(args.templates)
    try:
        docs = documents.read(args.files)
    except documents.InputError as err:
        missing = "no such file" in str(err) or "cannot read" in str(err)
        raise Failure(EXIT_USAGE if missing else EXIT_INVALID, [str(err)]) from None
    try:
        items = pipeline.load(docs, templates, args.namespace)
    except pipeline.SpecErrors as err:
        raise Failure(EXIT_INVALID, err.lines) from None
    except TemplateError as err:
        raise Failure(EXIT_TEMPLATE, [str(err)]) from None
    return templates, items


def render_sources(args: argparse.Namespace) -> Result:
    """Load and render the sources as `render` does; a Failure carries render's exit code."""
    from generator import pipeline  # noqa: PLC0415
    from generator.expand import Settings  # noqa: PLC0415
    from generator.templating import TemplateError  # noqa: PLC0415

    templates, items = load_inputs(args)
    settings = Settings(
        podgroups=args.podgroups, subgroup_policy=args.subgroup_policy, owner_uid=args.owner_uid
    )
    try:
        return pipeline.render(items, templates, settings)
    except TemplateError as err:
        raise Failure(EXIT_TEMPLATE, [str(err)]) from None


def report_drift(root: Path, bundles: Sequence[Bundle]) -> bool:
    """Print how `root` differs from `bundles` (the drift report); True when it does."""
    from generator import drift  # noqa: PLC0415
    from generator.terminal import Style  # noqa: PLC0415

    try:
        report = drift.compare(root, bundles)
    except drift.UnreadableOutput as err:
        raise Failure(EXIT_USAGE, [str(err)]) from None
    sys.stdout.write(report.text(Style.for_stream(sys.stdout)))
    return report.drifted


def _render(args: argparse.Namespace) -> int:
    from generator import output  # noqa: PLC0415

    if args.check and args.output_dir is None:
        raise Failure(EXIT_USAGE, ["--check needs --output-dir DIR (the folder to compare)"])
    if args.output_dir is not None and args.output_dir.exists() and not args.output_dir.is_dir():
        raise Failure(EXIT_USAGE, [f"--output-dir {args.output_dir}: not a folder"])
    result = render_sources(args)
    if args.output_dir is None:
        objects = result.objects()
        text = output.to_json(objects) if args.output == "json" else output.to_yaml(objects)
        sys.stdout.write(text)
        return EXIT_OK
    if args.check:
        return EXIT_DRIFT if report_drift(args.output_dir, result.bundles) else EXIT_OK
    try:
        output.write_bundles(args.output_dir, result.bundles)
    except OSError as err:
        # write_bundles swaps folders in only once all files are written: nothing changed.
        where = f" ({err.filename})" if err.filename else ""
        raise Failure(
            EXIT_USAGE, [f"--output-dir {args.output_dir}: cannot write{where}: {err.strerror}"]
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
    _, items = load_inputs(args)
    count = sum(1 for item in items if item.ms is not None)
    _note(f"{count} ModelServing(s) valid")
    return EXIT_OK


def _crd(args: argparse.Namespace) -> int:
    from generator import output  # noqa: PLC0415
    from generator.crd import modelserving_crd  # noqa: PLC0415

    sys.stdout.write(output.to_yaml([modelserving_crd()]))
    return EXIT_OK


def _watch(args: argparse.Namespace) -> int:
    from generator import watch  # noqa: PLC0415 - imports watchfiles, kept off the render path

    return watch.run(args)


def diff_against(args: argparse.Namespace) -> int:
    """`diff --against DIR`: the drift report of render --check, always exit 0 when shown."""
    if args.against is None:
        raise Failure(
            EXIT_USAGE,
            ["diff needs --against DIR: the folder written by msctl render --output-dir DIR"],
        )
    report_drift(args.against, render_sources(args).bundles)
    return EXIT_OK


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except Failure as failure:
        for line in failure.lines:
            _note(line)
        return failure.code
    except KeyboardInterrupt:
        return EXIT_OK if getattr(args, "command", "") == "watch" else 130
    except BrokenPipeError:
        # `msctl render | head`: the reader left; not an error of ours.
        sys.stderr.close()
        return EXIT_OK


def entry() -> None:
    sys.exit(main())
