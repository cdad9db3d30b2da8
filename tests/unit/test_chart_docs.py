"""The chart README documents every value of values.yaml, with its default, and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "chart" / "msctl"
ROW = re.compile(r"^\| `([A-Za-z.]+)` \| (.+?) \| (.+) \|$")


def documented() -> dict[str, str]:
    rows = [ROW.match(line) for line in (CHART / "README.md").read_text().splitlines()]
    return {m[1]: m[2] for m in rows if m}


def leaves(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in values.items():
        path = prefix + key
        if isinstance(value, dict) and value:
            found.update(leaves(value, path + "."))
        else:
            found[path] = value
    return found


def lookup(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def test_every_value_has_a_row_in_the_readme_table() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = documented()
    for path in leaves(values):
        parts = path.split(".")
        prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        assert prefixes & set(rows), f"{path} is not in the README's table of values"


def test_every_row_names_a_value_and_shows_its_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path, default in documented().items():
        value = lookup(values, path)
        if default != "see `values.yaml`":
            assert json.loads(default.strip("`")) == value, path


def test_the_schema_knows_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in documented():
        node = schema
        for part in path.split("."):
            assert part in node.get("properties", {}), f"{path} is not in values.schema.json"
            node = node["properties"][part]
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
        assert lookup(values, path) is not None
