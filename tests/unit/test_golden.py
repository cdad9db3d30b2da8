"""The examples render to the committed golden files, byte for byte.

After an intended change: `python tools/update_golden.py`, then review `git diff tests/golden`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_every_example_has_a_golden_file() -> None:
    golden = sorted(p.name for p in (ROOT / "tests" / "golden").glob("*.yaml"))
    assert golden == [p.name for p in EXAMPLES]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_renders_to_its_golden_file(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["render", "-f", str(example)]) == 0
    expected = (ROOT / "tests" / "golden" / example.name).read_text()
    assert capsys.readouterr().out == expected
