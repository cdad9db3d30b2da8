"""The errors that end an msctl command, each with its exit code: raised by the commands'
modules, turned into stderr lines and an exit code only by the CLI boundary (`sync.cli`).

Each class carries its exit code and the line `--help` shows for it, so the exit-code table in
the help is built from the same classes that produce the codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

EXIT_OK = 0


class MsctlError(Exception):
    """Ends the command with `exit_code` after printing `lines` to stderr."""

    exit_code: ClassVar[int]
    meaning: ClassVar[str]  # its line in the exit-code table of --help

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


class UsageError(MsctlError):
    exit_code = 1
    meaning = "usage error, or an input file or folder that cannot be read"


class InvalidInput(MsctlError):
    exit_code = 2
    meaning = "invalid input: not YAML/JSON, or a ModelServing that breaks the rules"


class TemplateFailure(MsctlError):
    exit_code = 3
    meaning = "a template failed (the message names its file and line)"


class DriftFound(MsctlError):
    """Raised after the drift report is printed, so it usually has no lines of its own."""

    exit_code = 4
    meaning = "drift: the output folder does not hold what the sources render"


def exit_code_table(errors: Iterable[type[MsctlError]]) -> str:
    """The `exit codes:` epilog of --help: success, then each error's code and meaning."""
    rows = [(EXIT_OK, "success"), *sorted((e.exit_code, e.meaning) for e in errors)]
    return "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in rows)
