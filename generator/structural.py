"""Structural-schema checks and defaulting, the way the API server treats a custom resource.

The ModelServing schema (see `schema`) is the same one the CRD carries, so a spec that passes
here is accepted by the API server, and defaults land exactly where the server would put them
(which matters: the revision hash is computed over the defaulted roles). Differences from the
API server, both deliberate: unknown fields are errors (the server would silently prune them,
kubectl's strict validation reports them), and every violation is collected, with its path,
instead of stopping at the first.

`x-kubernetes-validations` (CEL) rules are not evaluated here; `validation` implements the same
rules in Python.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

Node = Mapping[str, Any]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, order=True)
class Violation:
    """One problem in one document: where (a field path such as `spec.template.roles[0].name`)
    and what is wrong, in words a user can act on."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def written(value: Any) -> str:
    """A value as a user wrote it, for messages: `integer 8080`, `boolean true`, `"abc"`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value:g}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f'"{text}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# Patterns users meet often, said in words rather than as a regular expression.
PATTERN_WORDS = {
    "^[a-z]([-a-z0-9]*[a-z0-9])?$": "must be a DNS-1035 label: lowercase letters, digits and '-', "
    "starting with a letter and ending with a letter or digit",
}


@cache
def _pattern(expr: str) -> re.Pattern[str]:
    return re.compile(expr)


class StructuralSchema:
    """A schema with `{"$ref": name}` nodes resolved against `definitions`."""

    def __init__(self, root: Node, definitions: Mapping[str, Node]) -> None:
        self.root = root
        self.definitions = definitions

    def resolve(self, node: Node) -> Node:
        while "$ref" in node:
            node = self.definitions[node["$ref"]]
        return node

    def apply(self, value: Any) -> tuple[Any, list[Violation]]:
        """Return (value with nulls pruned and defaults applied, violations)."""
        found: list[Violation] = []
        result = self._walk(value, self.root, "", found.append)
        return result, found

    def _walk(self, value: Any, node: Node, path: str, report: Callable[[Violation], None]) -> Any:
        node = self.resolve(node)
        if node.get("x-kubernetes-int-or-string"):
            if isinstance(value, bool) or not isinstance(value, int | str):
                hint = f' (write it as a string: "{value:g}")' if isinstance(value, float) else ""
                report(
                    Violation(path, f"must be an integer or a string, got {written(value)}{hint}")
                )
                return value
            if isinstance(value, str):
                self._check_string(value, node, path, report)
            return value
        kind = node.get("type")
        if kind == "object":
            return self._object(value, node, path, report)
        if kind == "array":
            return self._array(value, node, path, report)
        if kind == "string":
            if not isinstance(value, str):
                hint = f' (quote it: "{str(value).lower() if isinstance(value, bool) else value}")'
                extra = hint if isinstance(value, int | float) else ""
                report(Violation(path, f"must be a string, got {written(value)}{extra}"))
                return value
            self._check_string(value, node, path, report)
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                report(Violation(path, f"must be an integer, got {written(value)}"))
                return value
            self._check_number(value, node, path, report)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                report(Violation(path, f"must be a number, got {written(value)}"))
                return value
            self._check_number(value, node, path, report)
        elif kind == "boolean" and not isinstance(value, bool):
            report(Violation(path, f"must be true or false, got {written(value)}"))
        if "enum" in node and value not in node["enum"]:
            allowed = ", ".join(str(v) for v in node["enum"])
            report(Violation(path, f"must be one of {allowed}; got {written(value)}"))
        return value

    def _check_string(
        self, value: str, node: Node, path: str, report: Callable[[Violation], None]
    ) -> None:
        if "maxLength" in node and len(value) > node["maxLength"]:
            report(
                Violation(
                    path,
                    f"must be at most {node['maxLength']} characters, "
                    f"got {len(value)} ({written(value)})",
                )
            )
        if "minLength" in node and len(value) < node["minLength"]:
            report(Violation(path, f"must be at least {node['minLength']} characters"))
        expr = node.get("pattern")
        if expr is not None and not _pattern(expr).search(value):
            if expr in PATTERN_WORDS:
                report(Violation(path, f"{PATTERN_WORDS[expr]}, got {written(value)}"))
            elif node.get("x-kubernetes-int-or-string"):
                report(
                    Violation(path, f"{written(value)} is not a quantity (such as 500m, 2, 1.5Gi)")
                )
            else:
                report(Violation(path, f"{written(value)} does not match the pattern {expr}"))

    def _check_number(
        self, value: float, node: Node, path: str, report: Callable[[Violation], None]
    ) -> None:
        bounds = {"int32": INT32, "int64": INT64}.get(node.get("format", ""))
        if bounds and not bounds[0] <= value <= bounds[1]:
            report(Violation(path, f"{value} does not fit in {node['format']}"))
        if "minimum" in node and value < node["minimum"]:
            report(
                Violation(path, f"must be greater than or equal to {node['minimum']}, got {value}")
            )
        if "maximum" in node and value > node["maximum"]:
            report(Violation(path, f"must be less than or equal to {node['maximum']}, got {value}"))

    def _object(
        self, value: Any, node: Node, path: str, report: Callable[[Violation], None]
    ) -> Any:
        if not isinstance(value, dict):
            report(Violation(path, f"must be an object, got {written(value)}"))
            return value
        properties: Mapping[str, Node] = node.get("properties", {})
        extra = node.get("additionalProperties")
        preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                report(Violation(path, f"keys must be strings, got {written(key)}"))
                continue
            if item is None:
                continue  # the API server prunes nulls of non-nullable fields
            if key in properties:
                out[key] = self._walk(item, properties[key], join(path, key), report)
            elif isinstance(extra, dict):
                out[key] = self._walk(item, extra, f'{path}["{key}"]', report)
            elif preserve:
                out[key] = item
            else:
                close = difflib.get_close_matches(key, list(properties), n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                child = join(path, key) if key.isidentifier() else f'{path}["{key}"]'
                report(Violation(child, f"unknown field{hint}"))
        for key, prop in properties.items():
            if key not in out and "default" in self.resolve(prop):
                out[key] = copy.deepcopy(self.resolve(prop)["default"])
        for key in node.get("required", ()):
            if key not in out:
                report(Violation(join(path, key), "is required"))
        return out

    def _array(self, value: Any, node: Node, path: str, report: Callable[[Violation], None]) -> Any:
        if not isinstance(value, list):
            report(Violation(path, f"must be a list, got {written(value)}"))
            return value
        if "minItems" in node and len(value) < node["minItems"]:
            report(
                Violation(path, f"must have at least {node['minItems']} item(s), got {len(value)}")
            )
        if "maxItems" in node and len(value) > node["maxItems"]:
            report(Violation(path, f"must have at most {node['maxItems']} items, got {len(value)}"))
        items = node.get("items", {})
        out = [self._walk(item, items, f"{path}[{i}]", report) for i, item in enumerate(value)]
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "map":
            self._unique(out, tuple(node.get("x-kubernetes-list-map-keys", ())), path, report)
        elif list_type == "set":
            self._unique(out, (), path, report)
        return out

    @staticmethod
    def _unique(
        items: list[Any], keys: tuple[str, ...], path: str, report: Callable[[Violation], None]
    ) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if keys:
                if not isinstance(item, dict):
                    continue
                ident = ", ".join(f"{k}={written(item.get(k))}" for k in keys)
            else:
                ident = written(item)
            if ident in seen:
                report(
                    Violation(
                        f"{path}[{i}]", f"duplicate entry ({ident}); see {path}[{seen[ident]}]"
                    )
                )
            else:
                seen[ident] = i
