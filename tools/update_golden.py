"""Rewrite tests/golden/<example>.yaml from `msctl render -f examples/<example>.yaml`, and the
offline rollout previews: tests/golden/preview/<example>.txt and docs/preview/rolling-update.txt
and .svg from `msctl plan -f docs/preview/<example>-new.yaml --from examples/<example>.yaml`.

Run after an intended change of the rendered output or of the preview, then review the diff
before committing:
    python tools/update_golden.py && git diff tests/golden docs/preview
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from sync import cli

ROOT = Path(__file__).resolve().parent.parent
PREVIEWS = ("rolling-update", "role-rolling-update")
DOCUMENTED = "rolling-update"  # the preview shown in the README, as text and as SVG


def previews() -> None:
    # Relative paths, as the README gives them: the preview names its files.
    os.chdir(ROOT)
    for case in PREVIEWS:
        argv = ["plan", "-f", f"docs/preview/{case}-new.yaml", "--from", f"examples/{case}.yaml"]
        if case == DOCUMENTED:
            argv += ["--timeline", f"docs/preview/{case}.svg"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(argv)
        if code != 0:
            raise SystemExit(f"{case}: plan --from failed with exit code {code}")
        targets = [ROOT / "tests" / "golden" / "preview" / f"{case}.txt"]
        if case == DOCUMENTED:
            targets.append(ROOT / "docs" / "preview" / f"{case}.txt")
        for target in targets:
            target.write_text(out.getvalue())
            print(f"wrote {target.relative_to(ROOT)}")


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
    previews()


if __name__ == "__main__":
    main()
