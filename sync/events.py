"""Writing Events about a ModelServing (docs/behaviour.md#events), with client-go's spam filter.

Events are informational writes; a large rollout must not turn into thousands of them. As
client-go does, each involved object gets a token bucket (burst 25, one more token every five
minutes), and an event identical to one sent in the last ten minutes is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from generator import naming
from sync.core.events import Event
from sync.core.timestamps import timestamp

COMPONENT = "modelserving-controller"
BURST = 25
REFILL_SECONDS = 300.0
DEDUPE_SECONDS = 600.0


def event_object(
    ms: Mapping[str, Any], event: Event, now: float, instance: str = ""
) -> dict[str, Any]:
    meta = ms["metadata"]
    stamp = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "involvedObject": {
            # A ModelServing, or a LeaderWorkerSet of the LWS bridge (live objects carry both).
            "apiVersion": ms.get("apiVersion", naming.API_VERSION),
            "kind": ms.get("kind", naming.KIND),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "reason": event.reason,
        "message": event.message,
        "type": event.type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class SpamFilter:
    """Decides which events may be written; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._recent: dict[tuple[str, str, str], float] = {}

    def allow(self, key: str, event: Event) -> bool:
        now = self._clock()
        with self._lock:
            seen = self._recent.get((key, event.reason, event.message))
            if seen is not None and now - seen < DEDUPE_SECONDS:
                return False
            tokens, at = self._buckets.get(key, (float(BURST), now))
            tokens = min(float(BURST), tokens + (now - at) / REFILL_SECONDS)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            self._recent[(key, event.reason, event.message)] = now
            if len(self._recent) > 10_000:
                self._recent = {k: t for k, t in self._recent.items() if now - t < DEDUPE_SECONDS}
            return True
