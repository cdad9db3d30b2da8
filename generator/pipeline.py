"""Documents in, objects out: the whole offline pipeline for `render`, `validate` and `watch`.

Every document is loaded first and all violations of all documents are reported together;
nothing is rendered unless every ModelServing is valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from generator import lws, model, naming
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
    # A LeaderWorkerSet document: its mapping (docs/behaviour.md#leaderworkerset).
    lws: lws.Mapped | None = None

    def warnings(self) -> list[str]:
        """`<file>:<document>: <field>=<value> is not honoured; instead: ...` per LWS field."""
        found = self.lws.unsupported if self.lws is not None else ()
        return [f"{self.document.where}: {u}" for u in found]


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
        if lws.is_lws(doc.body):
            problems = lws.violations(doc.body)
            if problems:
                errors.extend(f"{doc.where}: {v}" for v in problems)
                continue
            try:
                items.append(_bridged(doc, namespace, plugins))
            except model.InvalidSpec as err:
                has_leader = "leaderTemplate" in doc.body["spec"]["leaderWorkerTemplate"]
                errors.extend(
                    f"{doc.where}: {replace(v, path=lws.origin(v.path, has_leader))}"
                    for v in err.violations
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


def _bridged(doc: Document, namespace: str, plugins: frozenset[str]) -> Item:
    mapped = lws.to_modelserving(doc.body)
    return Item(doc, model.load(mapped.modelserving, namespace=namespace, plugins=plugins), mapped)


def bridged_object(item: Item, owner_uid: str | None) -> dict[str, Any]:
    """The defaulted ModelServing a LeaderWorkerSet item maps to, owned by the LWS `owner_uid`
    (else its `metadata.uid`; no owner reference when neither is known)."""
    assert item.ms is not None and item.lws is not None
    body: Mapping[str, Any] = item.document.body
    uid = owner_uid or body["metadata"].get("uid")
    meta = dict(item.lws.modelserving["metadata"])
    meta["namespace"] = item.ms.namespace
    meta["ownerReferences"] = [lws.owner_reference(body, uid or "")]
    ms = {**item.lws.modelserving, "metadata": meta, "spec": item.ms.raw["spec"]}
    return lws.emitted(ms)


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
        if item.lws is None:
            objects = render_modelserving(Renderer(templates, item.ms, settings))
        else:
            # The ModelServing's own uid is unknown until the bridge creates it: its children
            # get no owner references; the ModelServing itself names the LWS.
            children = replace(settings, owner_uid=None)
            objects = [
                bridged_object(item, settings.owner_uid),
                *render_modelserving(Renderer(templates, item.ms, children)),
            ]
        bundles.append(Bundle(item.ms.namespace, item.ms.name, objects))
    return Rendered(passthrough, bundles)
