"""Offline preview: `msctl plan -f NEW --from OLD`, and the rollout impact `msctl watch` prints.

Part of the cluster commands' shell, but it talks to no cluster (docs/behaviour.md#offline-preview).
It builds the live objects OLD stands for once fully rolled out: OLD rendered by the generator
(pods, Services, PodGroups, its ControllerRevision), every pod Running and Ready, and the status
a converged daemon writes (`sync.core.simulate.settled_status`). It then plays the rollout to
NEW with exactly the daemon's planner (`Renderings.inputs`, `sync.core.plan.plan`) in
`sync.core.simulate`, and tells it with `sync.core.replacements`.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator import documents, model, sources
from generator.errors import TemplateFailure, UsageError
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.sources import ServingSource
from generator.templating import TemplateError, TemplateSet
from sync.core.observe import Observed
from sync.core.plan import plan
from sync.core.replacements import Rollout
from sync.core.simulate import Record, Unsettled, World, settled_status, simulate
from sync.core.steps import Plan, Recall
from sync.core.tally import tell
from sync.preview import Preview
from sync.rendering import Renderings
from sync.timeline import draw

OFFLINE_UID = "offline-preview"  # the one ModelServing OLD and NEW both stand for
START = 0.0  # the simulated clock starts at the epoch: output never depends on the date
# Time from an old pod's deletion to its replacement being Ready: termination, scheduling,
# image pull from a warm node cache, and a vLLM server loading an 8B model from local disk
# take 1-2 minutes; larger models take longer (set --ready-after).
DEFAULT_READY_AFTER = 90.0


def _stored(ms: model.ModelServing, generation: int) -> dict[str, Any]:
    """`ms` as the API server stores it: the defaulted spec, a uid, a generation."""
    body = copy.deepcopy(dict(ms.raw))
    body["metadata"] = {
        **body.get("metadata", {}),
        "namespace": ms.namespace,
        "uid": OFFLINE_UID,
        "generation": generation,
    }
    return body


def _loaded(body: Mapping[str, Any], templates: TemplateSet) -> model.ModelServing:
    return model.load(
        body, namespace=str(body["metadata"]["namespace"]), plugins=templates.plugins()
    )


def converged(old: model.ModelServing, templates: TemplateSet, settings: Settings) -> World:
    """The live objects of `old` once a daemon has rolled it out and every pod is ready."""
    stored = _stored(old, 1)
    ms = _loaded(stored, templates)
    renderer = Renderer(templates, ms, settings)
    roles = ms.raw["spec"]["template"]["roles"]
    world = World(ms.name, OFFLINE_UID, stored)
    world.settle([renderer.controller_revision(ms.revision, roles), *render_modelserving(renderer)])
    world.live["status"] = settled_status(ms, world.observed(), START)
    return world


def play(
    old: ServingSource, new: ServingSource, ready_after: float = DEFAULT_READY_AFTER
) -> tuple[model.ModelServing, Record, Rollout]:
    """Roll `new` out over `old` (fully rolled out and ready); its record, told."""
    settings = Settings(
        podgroups=new.settings.podgroups,
        subgroup_policy=new.settings.subgroup_policy,
        owner_uid=OFFLINE_UID,
    )
    old_settings = Settings(
        podgroups=old.settings.podgroups,
        subgroup_policy=old.settings.subgroup_policy,
        owner_uid=OFFLINE_UID,
    )
    world = converged(old.ms, old.templates, old_settings)
    same = old.ms.raw["spec"] == new.ms.raw["spec"]
    stored = _stored(new.ms, 1 if same else 2)
    ms = _loaded(stored, new.templates)
    world.live = {**stored, "status": world.live["status"]}
    renderings = Renderings(new.templates, ms, settings)

    def planner(
        observed: Observed, live: Mapping[str, Any], now: float, recall: Recall | None
    ) -> Plan:
        return plan(renderings.inputs(observed, live, now, recall))

    record = simulate(world, planner, ready_after, START)
    return ms, record, tell(ms, record, ready_after)


def offline_preview(
    old: ServingSource, new: ServingSource, origin: str, ready_after: float = DEFAULT_READY_AFTER
) -> tuple[Preview, Rollout]:
    """What `msctl plan -f NEW --from OLD` prints: the daemon's first plan, then the rollout."""
    ms, record, rollout = play(old, new, ready_after)
    against = f"from {origin} at revision {old.ms.revision}, assumed fully rolled out and ready"
    return Preview(ms, True, record.first, against=against, rollout=rollout), rollout


def impact(before: ServingSource, after: ServingSource) -> str:
    """The rollout impact of a change, in one line (`msctl watch`)."""
    try:
        return play(before, after)[2].summary()
    except TemplateError as err:  # an overlay that renders only for some revisions
        return f"not simulated: {err}"
    except Unsettled as err:
        return f"not simulated: {err}"


def _servings(args: argparse.Namespace, files: list[str]) -> dict[str, ServingSource]:
    templates, items = sources.load_inputs(argparse.Namespace(**{**vars(args), "files": files}))
    settings = Settings(owner_uid=OFFLINE_UID)
    return {i.ms.key: ServingSource(i.ms, templates, settings) for i in items if i.ms is not None}


def offline_previews(args: argparse.Namespace) -> list[Preview]:
    """`msctl plan -f NEW --from OLD [--ready-after D] [--timeline FILE.svg]`."""
    if documents.STDIN in args.files and documents.STDIN in args.old_files:
        raise UsageError("-f - and --from - cannot both read stdin")
    new = _servings(args, args.files)
    old = _servings(args, args.old_files)
    origin = ", ".join(args.old_files)
    if set(new) != set(old):
        raise UsageError(
            f"-f and --from must name the same ModelServings: -f names "
            f"{', '.join(sorted(new)) or 'none'}, --from ({origin}) names "
            f"{', '.join(sorted(old)) or 'none'}"
        )
    if args.timeline is not None and len(new) != 1:
        raise UsageError(f"--timeline draws one ModelServing; -f names {len(new)}")
    ready_after = args.ready_after if args.ready_after is not None else DEFAULT_READY_AFTER
    try:
        results = [offline_preview(old[k], new[k], origin, ready_after) for k in new]
    except TemplateError as err:
        raise TemplateFailure(str(err)) from None
    except Unsettled as err:
        raise UsageError(f"cannot preview the rollout: {err}") from None
    if args.timeline is not None:
        preview, rollout = results[0]
        _write(
            args.timeline, draw(rollout, f"{preview.ms.key}: {origin} -> {', '.join(args.files)}")
        )
    return [preview for preview, _ in results]


def _write(path: Path, text: str) -> None:
    """All or nothing: a half-written picture never replaces a good one."""
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as err:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise UsageError(f"--timeline {path}: cannot write: {err.strerror or err}") from None
