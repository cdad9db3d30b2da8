"""Reading input documents: files, folders (recursively) or stdin; YAML streams or JSON.

YAML is read the way kubectl reads it as far as it matters here: dates stay strings,
duplicate keys are errors (they are silently lost otherwise), and a `v1 List` is unpacked
into its items.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[valid-type,misc]
    """Safe YAML loader without implicit timestamps and with duplicate-key errors."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_yaml_map)


class InputError(Exception):
    """An input cannot be read or parsed (not a spec error: the text itself is broken)."""


class UnreadableInput(InputError):
    """A path that does not exist, or a file that cannot be read as UTF-8 text."""


class UnparsableInput(InputError):
    """Text that is not YAML or JSON (duplicate keys included)."""


class EmptyFolder(InputError):
    """A folder without a single *.yaml, *.yml or *.json file in it."""


@dataclass(frozen=True)
class Document:
    source: str  # file path, or "<stdin>"
    index: int  # 1-based position in its file
    body: Any

    @property
    def where(self) -> str:
        return f"{self.source}:{self.index}"

    @property
    def kind(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("kind"), str):
            return str(self.body["kind"])
        return None


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files as given; folders walked recursively for *.yaml, *.yml, *.json, sorted."""
    out: list[str] = []
    for raw in paths:
        if raw == STDIN:
            out.append(raw)
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            if not found:
                raise EmptyFolder(f"{raw}: folder holds no *.yaml, *.yml or *.json file")
            out.extend(found)
        elif path.is_file():
            out.append(str(path))
        else:
            raise UnreadableInput(f"{raw}: no such file or folder")
    return out


def parse_text(text: str, source: str) -> list[Document]:
    try:
        bodies = list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(err, "problem", None) or str(err)
        raise UnparsableInput(f"{where}: not valid YAML or JSON: {problem}") from None
    docs: list[Document] = []
    for body in bodies:
        if body is None:
            continue  # empty documents between `---` separators
        items = body.get("items") if isinstance(body, dict) and body.get("kind") == "List" else None
        for item in items if isinstance(items, list) else [body]:
            docs.append(Document(source, len(docs) + 1, item))
    return docs


def read(paths: Iterable[str], stdin: Callable[[], str] | None = None) -> list[Document]:
    """Every document of every path, in order; `-` reads `stdin()` once."""
    docs: list[Document] = []
    for path in expand_paths(paths):
        if path == STDIN:
            docs.extend(parse_text(stdin() if stdin else sys.stdin.read(), "<stdin>"))
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UnreadableInput(f"{path}: cannot read: {err}") from None
        docs.extend(parse_text(text, path))
    return docs
