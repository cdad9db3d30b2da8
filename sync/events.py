"""Writing Events about a ModelServing (docs/behaviour.md#events), with client-go's spam filter.

Events are informational writes; a large rollout must not turn into thousands of them. As
client-go does, each involved object gets a token bucket (burst 25, one more token every five
minutes), and an event identical to one sent in the last ten minutes is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from itertools import islice
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
            said = (key, event.reason, event.message)
            self._recent.pop(said, None)  # to the end: the dict stays in the order of writing
            self._recent[said] = now
            self._forget_expired(now)
            return True

    def _forget_expired(self, now: float) -> None:
        # The oldest entries are first, so forgetting the expired ones stops at the first
        # that is not: each entry is looked at about once. (Rebuilding the whole dict once it
        # held 10,000 entries did that on every Event while 10,000 were recent: at 50,000
        # pods, a quadratic share of the daemon's CPU.)
        for said, at in list(islice(self._recent.items(), 64)):
            if now - at < DEDUPE_SECONDS:
                return
            del self._recent[said]
