"""Drift: does an output folder hold exactly what the sources render?

Used by `msctl render --check` (the CI gate) and `msctl diff --against`. Files are compared as
bytes first (output is canonical, so equal objects are equal bytes); for files that differ, the
JSON patch from the folder's object to the rendered one says what moved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from generator.documents import Loader
from generator.output import Bundle, read_folder


@dataclass(frozen=True)
class Change:
    file: str
    status: str  # "missing" (rendered, not in folder), "extra" (in folder, not rendered), "changed"
    patch: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FolderDrift:
    folder: Path
    changes: list[Change]


@dataclass(frozen=True)
class Report:
    folders: list[FolderDrift]

    @property
    def drifted(self) -> bool:
        return any(f.changes for f in self.folders)

    def count(self) -> int:
        return sum(len(f.changes) for f in self.folders)

    def text(self) -> str:
        if not self.drifted:
            return f"no drift: {len(self.folders)} folder(s) hold exactly what the sources render\n"
        lines: list[str] = []
        mark = {"missing": "+", "extra": "-", "changed": "~"}
        why = {
            "missing": "  (rendered, missing from the folder)",
            "extra": "  (in the folder, no longer rendered)",
            "changed": "",
        }
        for folder in self.folders:
            if not folder.changes:
                continue
            lines.append(f"drift in {folder.folder}:")
            for change in folder.changes:
                lines.append(f"  {mark[change.status]} {change.file}{why[change.status]}")
                lines.extend(f"      {json.dumps(op, sort_keys=True)}" for op in change.patch)
        lines.append(f"{self.count()} object file(s) differ")
        return "\n".join(lines) + "\n"


def _parse(text: str) -> Any:
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError:
        return None


def compare_files(folder: Path, want: dict[str, str], have: dict[str, str]) -> FolderDrift:
    changes: list[Change] = []
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            changes.append(Change(name, "missing"))
        elif name not in want:
            changes.append(Change(name, "extra"))
        elif want[name] != have[name]:
            old, new = _parse(have[name]), _parse(want[name])
            ops = (
                jsonpatch.make_patch(old, new).patch
                if old is not None
                else [{"op": "replace", "path": "", "value": "(folder file is not valid YAML)"}]
            )
            changes.append(Change(name, "changed", ops))
    return FolderDrift(folder, changes)


def compare(root: Path, bundles: Sequence[Bundle]) -> Report:
    return Report(
        [compare_files(root / b.folder, b.files(), read_folder(root / b.folder)) for b in bundles]
    )
