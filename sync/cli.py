"""The CLI boundary of msctl: the one parser, and the one place where errors become stderr
lines and exit codes. `msctl` and `python -m sync` both enter at `entry`.

The commands come from two groups, each registered by its package: the offline commands
(`generator.commands`) and the cluster commands with `diff` (`sync.commands`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from generator import __version__
from generator import commands as offline
from generator.commands import Handler
from generator.errors import (
    EXIT_OK,
    DriftFound,
    InvalidInput,
    MsctlError,
    TemplateFailure,
    UsageError,
    exit_code_table,
)
from sync import commands as cluster
from sync.commands import ApiFailure

ERRORS: tuple[type[MsctlError], ...] = (
    UsageError,
    InvalidInput,
    TemplateFailure,
    DriftFound,
    ApiFailure,
)
EXIT_CODES = exit_code_table(ERRORS)
EXIT_INTERRUPTED = 130  # what a shell reports for a command ended by SIGINT


class Parser(argparse.ArgumentParser):
    """Bad flags are usage errors: exit 1, the code argparse's 2 would clash with."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(UsageError.exit_code, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="msctl",
        description="Render, check and run Kthena ModelServing workloads "
        "(workload.serving.volcano.sh/v1alpha1): a ModelServing expands into ServingGroups of "
        "roles, each role instance an entry pod, worker pods and a headless Service, with one "
        "Volcano PodGroup per group.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"msctl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    offline.register(commands, EXIT_CODES, watch_impact=cluster.watch_impact)
    cluster.register(commands, EXIT_CODES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MsctlError as failure:
        for line in failure.lines:
            print(line, file=sys.stderr)
        return failure.exit_code
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "watch" else EXIT_INTERRUPTED
    except BrokenPipeError:
        # `msctl render | head`: the reader left; not an error of ours.
        sys.stderr.close()
        return EXIT_OK


def entry() -> None:
    sys.exit(main())
