"""Regenerate generator/podspec_schema.json from the Kubernetes OpenAPI v3 document.

The ModelServing CRD embeds two full PodTemplateSpecs per role. Rather than hand-writing that
schema, we take it from the OpenAPI v3 document that ships in the k8s.io/kubernetes Go module
(the same one the test control plane is built from) and convert it to the structural-schema
dialect CRDs accept: no `allOf`/`oneOf`, int-or-string fields marked as such, zero-value
defaults dropped (only `+default=` markers survive, as controller-gen does), descriptions
dropped (keeps the CRD under the 256 KiB `kubectl apply` annotation limit).

Usage:
    python tools/gen_podspec_schema.py [OPENAPI_JSON]

Without an argument the document is located with `go mod download -json k8s.io/kubernetes@V`.
This is a maintainer tool: nothing at install, run or test time needs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

KUBE_VERSION = "v1.36.3"
ROOT = "io.k8s.api.core.v1.PodSpec"
PREFIX = "io.k8s.api.core.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Nested object metadata (ephemeral volume claim templates) is kept free-form, as controller-gen
# does; full ObjectMeta would drag managedFields and friends into the CRD.
OPAQUE = {
    META + "ObjectMeta": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    META + "Time": {"type": "string", "format": "date-time"},
}
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
KEEP = {
    "type",
    "format",
    "items",
    "properties",
    "additionalProperties",
    "required",
    "enum",
    "default",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}
ZERO_DEFAULTS: tuple[Any, ...] = ({}, "", 0, False, [])


def locate_openapi() -> Path:
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{KUBE_VERSION}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(out)["Dir"]) / "api/openapi-spec/v3/api__v1_openapi.json"


def _is_zero(value: Any) -> bool:
    return any(value == z and type(value) is type(z) for z in ZERO_DEFAULTS)


def short(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    return name.removeprefix(PREFIX).removeprefix(META)


def convert(node: Any, wanted: set[str]) -> Any:
    if isinstance(node, list):
        return [convert(v, wanted) for v in node]
    if not isinstance(node, dict):
        return node
    if "allOf" in node:
        (only,) = node["allOf"]
        return convert(only, wanted)
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name == QUANTITY:
            return {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": QUANTITY_PATTERN,
                "x-kubernetes-int-or-string": True,
            }
        if name == INT_OR_STRING:
            return {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "x-kubernetes-int-or-string": True,
            }
        if name in OPAQUE:
            return dict(OPAQUE[name])
        wanted.add(name)
        return {"$ref": short(name).removeprefix(META)}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {k: convert(v, wanted) for k, v in value.items()}
            # openapi-gen gives required fields their zero value as default; only `+default=`
            # markers (on optional fields) are real defaults, as controller-gen has it.
            for name in node.get("required", ()):
                prop = out[key].get(name, {})
                if "default" in prop and _is_zero(prop["default"]):
                    del prop["default"]
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = convert(value, wanted)
        else:
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else locate_openapi()
    schemas = json.loads(source.read_text())["components"]["schemas"]
    definitions: dict[str, Any] = {}
    todo = {ROOT}
    while todo:
        name = todo.pop()
        if short(name) in definitions:
            continue
        wanted: set[str] = set()
        definitions[short(name)] = convert(schemas[name], wanted)
        todo |= {w for w in wanted if short(w) not in definitions}
    doc = {
        "source": f"k8s.io/kubernetes@{KUBE_VERSION} api/openapi-spec/v3/api__v1_openapi.json",
        "root": short(ROOT),
        "definitions": dict(sorted(definitions.items())),
    }
    target = Path(__file__).resolve().parent.parent / "generator" / "podspec_schema.json"
    target.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({len(definitions)} definitions)")


if __name__ == "__main__":
    main()
