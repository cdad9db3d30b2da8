"""The object kinds a ModelServing stands for, and the one order they are applied in.

Shared by `msctl render` (stream order and output file names) and the sync daemon (the waves
in which it creates objects), so a rendered folder applied with `kubectl apply -f` and the
daemon create things in the same order.
"""

from __future__ import annotations

from typing import Any, Final

# A rendered or live Kubernetes object: plain JSON data.
Object = dict[str, Any]

# A ControllerRevision records the roles before anything is built from them; a PodGroup must
# exist before its pods are scheduled; a headless Service is harmless before its pods, and
# lets their DNS names resolve as soon as they start; pods go last.
APPLY_ORDER: Final = ("ControllerRevision", "PodGroup", "Service", "Pod")

# `render --output-dir` file name prefixes: `kubectl apply -f DIR` walks files in name order.
# A ModelServing rendered from a LeaderWorkerSet comes first, before its children.
FILE_PREFIX: Final = {
    "ModelServing": "00",
    **dict(zip(APPLY_ORDER, ("05", "10", "20", "30"), strict=True)),
}
OTHER_PREFIX: Final = "90"


def apply_rank(kind: str) -> int:
    """Position of `kind` in the apply order; kinds outside it go last."""
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
