"""Differences between rendered objects: an output folder against a render, and render to render.

`compare` backs `msctl render --check` (the CI gate) and `msctl diff --against`: does a folder
written by `render --output-dir` hold exactly what the sources render now? Files are compared
as text first (output is canonical, so equal objects are equal text); for files that differ,
the JSON patch from the folder's object to the rendered one says what moved.

`changes` backs `msctl watch`: which objects one render added, removed or changed compared with
the previous one, keyed by kind/namespace/name. Both are pure apart from reading the folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from generator.documents import Loader
from generator.output import Bundle
from generator.terminal import Style

MISSING = "missing"  # rendered, not in the folder
EXTRA = "extra"  # in the folder, not rendered
CHANGED = "changed"


class UnreadableOutput(Exception):
    """The output folder (or a file in it) cannot be read: not drift, a usage problem."""


@dataclass(frozen=True)
class Change:
    file: str
    status: str  # MISSING, EXTRA or CHANGED
    patch: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FolderDrift:
    folder: Path
    changes: list[Change]
    # MISSING: a rendered ModelServing has no folder at all; EXTRA: a folder that no source
    # renders any more (a deleted or renamed ModelServing). Both are reported as one line.
    whole: str | None = None


@dataclass(frozen=True)
class Report:
    root: Path
    folders: list[FolderDrift]

    @property
    def drifted(self) -> bool:
        return any(f.changes or f.whole for f in self.folders)

    def count(self) -> int:
        return sum(len(f.changes) for f in self.folders)

    def text(self, style: Style | None = None) -> str:
        style = style or Style()
        if not self.drifted:
            return (
                f"no drift: {self.root} holds exactly what the sources render "
                f"({len(self.folders)} ModelServing folder(s))\n"
            )
        lines: list[str] = []
        for folder in self.folders:
            lines.extend(_folder_lines(folder, style))
        lines.append(
            style.bold(f"{self.count()} object file(s) differ")
            + f" from what the sources render; `msctl render` with the same sources and "
            f"--output-dir {self.root} updates them"
        )
        return "\n".join(lines) + "\n"


def _folder_lines(folder: FolderDrift, style: Style) -> list[str]:
    n = len(folder.changes)
    if folder.whole == MISSING:
        return [style.green(f"+ {folder.folder}/") + f"  ({n} file(s) rendered, folder missing)"]
    if folder.whole == EXTRA:
        return [
            style.red(f"- {folder.folder}/")
            + f"  ({n} file(s); no ModelServing in the sources renders this folder any more)"
        ]
    if not folder.changes:
        return []
    lines = [style.bold(f"drift in {folder.folder}:")]
    for change in folder.changes:
        if change.status == MISSING:
            lines.append(
                "  " + style.green(f"+ {change.file}") + "  (rendered, missing from the folder)"
            )
        elif change.status == EXTRA:
            lines.append(
                "  " + style.red(f"- {change.file}") + "  (in the folder, no longer rendered)"
            )
        else:
            lines.append("  " + style.yellow(f"~ {change.file}"))
            lines.extend(f"      {json.dumps(op, sort_keys=True)}" for op in change.patch)
    return lines


_UNPARSABLE = object()


def _parse(text: str) -> Any:
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError:
        return _UNPARSABLE


def compare_files(folder: Path, want: Mapping[str, str], have: Mapping[str, str]) -> FolderDrift:
    changes: list[Change] = []
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            changes.append(Change(name, MISSING))
        elif name not in want:
            changes.append(Change(name, EXTRA))
        elif want[name] != have[name]:
            old = _parse(have[name])
            ops = (
                jsonpatch.make_patch(old, _parse(want[name])).patch
                if old is not _UNPARSABLE
                else [{"op": "replace", "path": "", "value": "(folder file is not valid YAML)"}]
            )
            changes.append(Change(name, CHANGED, ops))
    return FolderDrift(folder, changes)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UnreadableOutput(f"{path}: cannot read: {err.strerror or err}") from None
    # Universal newlines, as Path.read_text would: a checkout with CRLF line endings (git
    # autocrlf on Windows) holds the same objects. Bytes that are not UTF-8 are drift, not a crash.
    text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_folder(folder: Path) -> dict[str, str]:
    """File name -> text of every file in `folder` ({} when there is no such folder)."""
    if not folder.is_dir():
        return {}
    try:
        paths = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as err:
        raise UnreadableOutput(f"{folder}: cannot read: {err.strerror or err}") from None
    return {p.name: _read_text(p) for p in paths}


def _folders(root: Path) -> list[Path]:
    """`<namespace>/<name>` folders under root; hidden ones (staging, .git) are not output."""
    try:
        return sorted(
            Path(ns.name) / ms.name
            for ns in root.iterdir()
            if ns.is_dir() and not ns.name.startswith(".")
            for ms in ns.iterdir()
            if ms.is_dir() and not ms.name.startswith(".")
        )
    except OSError as err:
        raise UnreadableOutput(f"{root}: cannot read: {err.strerror or err}") from None


def compare(root: Path, bundles: Sequence[Bundle]) -> Report:
    """What differs between folder `root` and `bundles`, as `render --output-dir` writes them."""
    if root.exists() and not root.is_dir():
        raise UnreadableOutput(f"{root}: not a folder")
    folders: list[FolderDrift] = []
    for bundle in bundles:
        path = root / bundle.folder
        drift = compare_files(path, bundle.files(), read_folder(path))
        whole = MISSING if not path.is_dir() else None
        folders.append(FolderDrift(path, drift.changes, whole))
    rendered = {b.folder for b in bundles}
    for orphan in (f for f in (_folders(root) if root.is_dir() else []) if f not in rendered):
        path = root / orphan
        extra = [Change(name, EXTRA) for name in read_folder(path)]
        folders.append(FolderDrift(path, extra, EXTRA))
    return Report(root, folders)


# Render to render, for `msctl watch`.

ObjectKey = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def object_label(key: ObjectKey) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass(frozen=True)
class ObjectChange:
    key: ObjectKey
    paths: tuple[str, ...]  # JSON-pointer paths that moved, in patch order


@dataclass(frozen=True)
class BundleChanges:
    """What one ModelServing's objects became between two renders."""

    namespace: str
    name: str
    added: list[ObjectKey]
    removed: list[ObjectKey]
    changed: list[ObjectChange]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def patch_paths(old: Any, new: Any) -> tuple[str, ...]:
    paths: dict[str, None] = {}
    for op in jsonpatch.make_patch(old, new).patch:
        if "from" in op:  # a move: both ends moved
            paths[op["from"]] = None
        paths[op["path"]] = None
    return tuple(paths)


def bundle_changes(
    namespace: str,
    name: str,
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
) -> BundleChanges:
    before = {key_of(o): o for o in old}
    after = {key_of(o): o for o in new}
    changed = [
        ObjectChange(key, patch_paths(before[key], obj))
        for key, obj in after.items()
        if key in before and before[key] != obj
    ]
    return BundleChanges(
        namespace,
        name,
        added=[k for k in after if k not in before],
        removed=[k for k in before if k not in after],
        changed=changed,
    )


def changes(old: Sequence[Bundle], new: Sequence[Bundle]) -> list[BundleChanges]:
    """Per ModelServing, in the new render's order, then ModelServings no longer rendered."""
    before = {(b.namespace, b.name): b.objects for b in old}
    after = {(b.namespace, b.name): b.objects for b in new}
    out = [
        bundle_changes(ns, name, before.get((ns, name), ()), objs)
        for (ns, name), objs in after.items()
    ]
    out.extend(
        bundle_changes(ns, name, objs, ())
        for (ns, name), objs in before.items()
        if (ns, name) not in after
    )
    return out
