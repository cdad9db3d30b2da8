"""Rewrite tests/golden/<example>.yaml from `msctl render -f examples/<example>.yaml`.

Run after an intended change of the rendered output, then review the diff before committing:
    python tools/update_golden.py && git diff tests/golden
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from sync import cli

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["render", "-f", str(example)])
        if code != 0:
            raise SystemExit(f"{example}: render failed with exit code {code}")
        target = ROOT / "tests" / "golden" / example.name
        target.write_text(out.getvalue())
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
