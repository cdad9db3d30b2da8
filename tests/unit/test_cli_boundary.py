"""The CLI boundary: typed errors to exit codes, `python -m sync`, and who may import whom."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator import commands, documents, errors
from sync import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "prefill-decode.yaml"
COMMANDS = ("render", "validate", "crd", "watch", "diff", "run", "plan")


def all_errors(base: type[errors.MsctlError] = errors.MsctlError) -> set[type[errors.MsctlError]]:
    found: set[type[errors.MsctlError]] = set()
    for sub in base.__subclasses__():
        found |= {sub, *all_errors(sub)}
    return found


def raising(err: BaseException) -> commands.Handler:
    def handler(_args: argparse.Namespace) -> int:
        raise err

    return handler


def test_every_typed_error_is_in_the_boundarys_table() -> None:
    assert all_errors() == set(cli.ERRORS)
    codes = [e.exit_code for e in cli.ERRORS]
    assert sorted(codes) == [1, 2, 3, 4, 5]
    for error in cli.ERRORS:
        assert f"  {error.exit_code}  {error.meaning}\n" in cli.EXIT_CODES + "\n"


@pytest.mark.parametrize("error", cli.ERRORS, ids=lambda e: e.__name__)
def test_a_typed_error_prints_its_lines_and_exits_with_its_code(
    error: type[errors.MsctlError],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(commands, "_crd", raising(error("first line", "second line")))
    assert cli.main(["crd"]) == error.exit_code
    assert capsys.readouterr() == ("", "first line\nsecond line\n")


@pytest.mark.parametrize(("command", "code"), [("crd", 130), ("watch", 0)])
def test_ctrl_c_ends_watch_cleanly_and_other_commands_as_interrupted(
    command: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, f"_{command}", raising(KeyboardInterrupt()))
    argv = [command] if command == "crd" else [command, "-f", str(EXAMPLE)]
    assert cli.main(argv) == code


def test_a_reader_that_leaves_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "_crd", raising(BrokenPipeError()))
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))  # noqa: SIM115
    assert cli.main(["crd"]) == 0
    assert sys.stderr.closed


@pytest.mark.parametrize(
    ("error", "code"),
    [
        # The messages say the opposite of the type: only the type may decide.
        (documents.UnreadableInput("x.yaml: not valid YAML or JSON"), 1),
        (documents.UnparsableInput("x.yaml: no such file or folder"), 2),
        (documents.UnparsableInput("x.yaml: cannot read"), 2),
        (documents.EmptyFolder("x: folder holds no *.yaml, *.yml or *.json file"), 2),
    ],
)
def test_input_errors_exit_by_their_type_not_their_text(
    error: documents.InputError,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def read(_paths: object) -> list[documents.Document]:
        raise error

    monkeypatch.setattr(documents, "read", read)
    assert cli.main(["render", "-f", "x.yaml"]) == code
    assert capsys.readouterr().err == f"{error}\n"


def test_an_unreadable_file_is_1_and_an_unparsable_one_is_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_text = tmp_path / "binary.yaml"
    not_text.write_bytes(b"kind: \xff\xfe\n")
    assert cli.main(["validate", "-f", str(not_text)]) == 1
    assert capsys.readouterr().err.startswith(f"{not_text}: cannot read: ")
    # A path that reads like a missing file must not make broken YAML a usage error.
    broken = tmp_path / "no such file, cannot read.yaml"
    broken.write_text("kind: [unclosed\n")
    assert cli.main(["validate", "-f", str(broken)]) == 2
    assert f"{broken}:2:1: not valid YAML or JSON" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["validate", "-f", str(empty)]) == 2


def test_python_m_sync_is_msctl() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sync", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: msctl ")
    listed = [
        line.split()[0]
        for line in done.stdout.splitlines()
        if line.startswith("    ") and line[4] != " "
    ]
    assert listed == list(COMMANDS)
    gone = subprocess.run(
        [sys.executable, "-m", "generator", "--help"], capture_output=True, check=False
    )
    assert gone.returncode != 0, "python -m generator must not pose as msctl"


def test_no_argparse_internals() -> None:
    for package in ("generator", "sync"):
        for path in (ROOT / package).glob("*.py"):
            text = path.read_text()
            for private in ("_actions", "_SubParsersAction", "_msctl_commands"):
                assert private not in text, f"{path.name} uses {private}"
