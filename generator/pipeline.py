"""Documents in, objects out: the whole offline pipeline for `render`, `validate` and `watch`.

Every document is loaded first and all violations of all documents are reported together;
nothing is rendered unless every ModelServing is valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generator import model, naming
from generator.documents import Document
from generator.expand import Settings
from generator.output import Bundle
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateSet


class SpecErrors(Exception):
    """Documents are invalid; `lines` reads `<file>:<document>: <field path>: <message>`."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Item:
    document: Document
    ms: model.ModelServing | None  # None: another kind, passed through unchanged


def is_modelserving(doc: Document) -> bool:
    body = doc.body
    if not isinstance(body, dict) or body.get("kind") != naming.KIND:
        return False
    api = body.get("apiVersion")
    return isinstance(api, str) and api.split("/")[0] == naming.API_GROUP


def load(docs: Sequence[Document], templates: TemplateSet, namespace: str) -> list[Item]:
    items: list[Item] = []
    errors: list[str] = []
    plugins = templates.plugins()
    for doc in docs:
        if not isinstance(doc.body, dict):
            errors.append(
                f"{doc.where}: a document must be an object, got {type(doc.body).__name__}"
            )
            continue
        if not is_modelserving(doc):
            items.append(Item(doc, None))
            continue
        if doc.body.get("apiVersion") != naming.API_VERSION:
            errors.append(
                f"{doc.where}: apiVersion: must be {naming.API_VERSION}, "
                f"got {doc.body.get('apiVersion')}"
            )
            continue
        try:
            items.append(Item(doc, model.load(doc.body, namespace=namespace, plugins=plugins)))
        except model.InvalidSpec as err:
            errors.extend(f"{doc.where}: {v}" for v in err.violations)
    if errors:
        raise SpecErrors(errors)
    return items


@dataclass(frozen=True)
class Rendered:
    passthrough: list[Any]
    bundles: list[Bundle]

    def objects(self) -> list[Any]:
        """Other documents first, in input order, then each ModelServing's objects."""
        return [*self.passthrough, *(o for b in self.bundles for o in b.objects)]


def render(items: Sequence[Item], templates: TemplateSet, settings: Settings) -> Rendered:
    passthrough: list[Any] = []
    bundles: list[Bundle] = []
    for item in items:
        if item.ms is None:
            passthrough.append(item.document.body)
            continue
        objects = render_modelserving(Renderer(templates, item.ms, settings))
        bundles.append(Bundle(item.ms.namespace, item.ms.name, objects))
    return Rendered(passthrough, bundles)
