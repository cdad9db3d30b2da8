"""Reading and rendering a command's sources, shared by the offline commands, `msctl watch` and
the cluster commands: below the command modules, so none of them imports another.

Functions take the options parsed by `generator.commands.add_input` (files, namespace,
templates) and `add_render_options` (owner_uid, podgroups, subgroup_policy), and raise the
typed errors of `generator.errors`; printing them is the CLI boundary's job.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator import documents, pipeline
from generator.errors import InvalidInput, TemplateFailure, UsageError
from generator.expand import Settings
from generator.model import ModelServing
from generator.output import Bundle
from generator.pipeline import Item, Rendered
from generator.templating import TemplateError, TemplateSet


def template_set(folder: Path | None) -> TemplateSet:
    """The built-in templates overlaid with `folder`, refused when it is not a folder."""
    if folder is not None and not folder.is_dir():
        raise UsageError(f"--templates {folder}: no such folder")
    return TemplateSet(folder)


def load_inputs(args: argparse.Namespace) -> tuple[TemplateSet, list[Item]]:
    """(template set, loaded items), or a typed error with every problem found."""
    templates = template_set(args.templates)
    try:
        docs = documents.read(args.files)
    except documents.UnreadableInput as err:
        raise UsageError(str(err)) from None
    except (documents.UnparsableInput, documents.EmptyFolder) as err:
        # An empty folder has always been invalid input (2), not an unreadable one (1).
        raise InvalidInput(str(err)) from None
    try:
        items = pipeline.load(docs, templates, args.namespace)
    except pipeline.SpecErrors as err:
        raise InvalidInput(*err.lines) from None
    except TemplateError as err:
        raise TemplateFailure(str(err)) from None
    for item in items:
        for warning in item.warnings():
            print(f"warning: {warning}", file=sys.stderr)
    return templates, items


@dataclass(frozen=True)
class ServingSource:
    """One loaded ModelServing with the templates and settings it renders with: what a
    rollout preview needs of each side (`msctl plan --from`, the impact `msctl watch` prints)."""

    ms: ModelServing
    templates: TemplateSet
    settings: Settings


# The rollout impact of a change from one render of a ModelServing to the next, in one line.
# `msctl watch` prints it; the cluster layer provides it (the generator knows no planner).
Impact = Callable[[ServingSource, ServingSource], str]


def render_sources(args: argparse.Namespace) -> Rendered:
    """Load and render the sources as `msctl render` does."""
    return render_loaded(args)[0]


def render_loaded(args: argparse.Namespace) -> tuple[Rendered, dict[str, ServingSource]]:
    """`render_sources`, and each ModelServing rendered, by `namespace/name`."""
    templates, items = load_inputs(args)
    settings = Settings(
        podgroups=args.podgroups, subgroup_policy=args.subgroup_policy, owner_uid=args.owner_uid
    )
    try:
        rendered = pipeline.render(items, templates, settings)
    except TemplateError as err:
        raise TemplateFailure(str(err)) from None
    loaded = {i.ms.key: ServingSource(i.ms, templates, settings) for i in items if i.ms is not None}
    return rendered, loaded


def report_drift(root: Path, bundles: Sequence[Bundle]) -> bool:
    """Print how `root` differs from `bundles` (the drift report); True when it does."""
    # jsonpatch (through drift) is needed only when comparing, not by a plain render.
    from generator import drift  # noqa: PLC0415
    from generator.terminal import Style  # noqa: PLC0415

    try:
        report = drift.compare(root, bundles)
    except drift.UnreadableOutput as err:
        raise UsageError(str(err)) from None
    sys.stdout.write(report.text(Style.for_stream(sys.stdout)))
    return report.drifted
