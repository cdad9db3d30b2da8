"""Serialising rendered objects: canonical YAML streams, JSON Lists, and output folders.

Canonical means: keys sorted, block style, no line folding, UTF-8 as is; the same objects give
the same bytes on every run and machine. Output folders are written all-or-nothing: everything
is staged next to the target and moved into place only once complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.kinds import FILE_PREFIX, OTHER_PREFIX

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(objects: Iterable[Any]) -> str:
    return yaml.dump_all(
        objects,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=1 << 30,
    )


def to_json(objects: Sequence[Any]) -> str:
    doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def file_name(obj: Mapping[str, Any]) -> str:
    kind = str(obj.get("kind", "Object"))
    return f"{FILE_PREFIX.get(kind, OTHER_PREFIX)}-{kind.lower()}-{obj['metadata']['name']}.yaml"


@dataclass(frozen=True)
class Bundle:
    """The objects of one ModelServing, written to `<dir>/<namespace>/<name>/`."""

    namespace: str
    name: str
    objects: Sequence[Mapping[str, Any]]

    @property
    def folder(self) -> Path:
        return Path(self.namespace) / self.name

    def files(self) -> dict[str, str]:
        return {file_name(o): to_yaml([o]) for o in self.objects}


def read_folder(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


def write_bundles(root: Path, bundles: Sequence[Bundle]) -> None:
    """Replace each bundle's folder under `root` with exactly its files, all or nothing.

    Folders of other ModelServings under `root` are left alone.
    """
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".msctl-stage-", dir=root))
    try:
        for bundle in bundles:
            target = stage / bundle.folder
            target.mkdir(parents=True)
            for name, text in bundle.files().items():
                (target / name).write_text(text, encoding="utf-8")
        # Everything is on disk; swap folders in. Renames on one filesystem cannot half-fail
        # for content, so a reader sees either the old or the new folder of each bundle.
        for bundle in bundles:
            final = root / bundle.folder
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                os.replace(final, stage / f".old-{bundle.namespace}-{bundle.name}")
            os.replace(stage / bundle.folder, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
