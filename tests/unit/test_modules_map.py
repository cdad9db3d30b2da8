"""docs/modules.md names every module of the two packages, so the map stays a map."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_is_on_the_map() -> None:
    text = (ROOT / "docs" / "modules.md").read_text()
    modules = sorted(
        path.relative_to(ROOT)
        for package in ("generator", "sync")
        for path in (ROOT / package).rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )
    missing = [str(m) for m in modules if f"`{m.name}`" not in text]
    assert not missing, f"add to docs/modules.md: {missing}"
