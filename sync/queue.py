"""A work queue with client-go's guarantees, for ModelServing keys ("namespace/name").

Adding a key that is already waiting does nothing; a key is never handed to two workers at
once (added while in progress, it is queued again when the worker is done); failures are
retried with per-key exponential backoff; `add_after` schedules a key for later.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable


class WorkQueue:
    def __init__(
        self,
        *,
        base_delay: float = 0.05,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._later: list[tuple[float, str]] = []
        self._failures: dict[str, int] = {}
        self._held: dict[str, float] = {}  # key -> until when adding it does nothing
        self._base = base_delay
        self._max = max_delay
        self._closed = False

    def add(self, key: str) -> None:
        with self._cond:
            if self._closed or key in self._dirty or self._is_held(key):
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            heapq.heappush(self._later, (self._clock() + delay, key))
            self._cond.notify()

    def hold(self, key: str, delay: float) -> None:
        """Hand `key` out again only after `delay`, however often it is added meanwhile."""
        with self._cond:
            until = self._clock() + delay
            self._held[key] = until
            self._dirty.discard(key)
            if key in self._queue:
                self._queue.remove(key)
            heapq.heappush(self._later, (until, key))
            self._cond.notify()

    def _is_held(self, key: str) -> bool:
        until = self._held.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._held[key]
            return False
        return True

    def retry(self, key: str) -> float:
        """Requeue a failed key after its backoff; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay: float = min(self._base * 2.0**failures, self._max)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts the backoff afresh."""
        with self._cond:
            self._failures.pop(key, None)

    def processing(self) -> list[str]:
        """The keys being reconciled right now."""
        with self._cond:
            return list(self._processing)

    def _promote(self) -> float | None:
        now = self._clock()
        while self._later and self._later[0][0] <= now:
            _, key = heapq.heappop(self._later)
            if key not in self._dirty and not self._is_held(key):
                self._dirty.add(key)
                if key not in self._processing:
                    self._queue.append(key)
        return self._later[0][0] - now if self._later else None

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to work on, or None when closed (or after `timeout`)."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                wait = self._promote()
                if self._queue:
                    key = self._queue.pop(0)
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                if self._closed:
                    return None
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._processing
