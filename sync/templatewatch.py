"""Noticing that the daemon's `--templates` folder changed, so it re-renders without a restart.

Part of the daemon's shell. A ConfigMap mounted as a volume is updated by the kubelet swapping
a symlink (`..data`) to a new folder, which file watchers often miss; reading the folder's
content every few seconds sees every kind of update, and a template folder is small.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from generator.templating import TemplateSet

log = logging.getLogger("msctl.templates")
POLL_SECONDS = 2.0


def fingerprint(folder: Path) -> str:
    """A digest of every file's relative path and content, following symlinks."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".."))  # the kubelet's staging
        for name in sorted(files):
            path = Path(root) / name
            try:
                content = path.read_bytes()
            except OSError:
                continue  # replaced while being read: the next poll sees the new one
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


class TemplateWatch:
    """Calls `changed(TemplateSet)` with a fresh template set whenever the folder changes."""

    def __init__(
        self,
        folder: Path,
        changed: Callable[[TemplateSet], None],
        *,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.folder = folder
        self.changed = changed
        self.interval = interval
        self._stop = threading.Event()
        self._seen = fingerprint(folder)
        self._thread = threading.Thread(target=self._run, name="templates", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = fingerprint(self.folder)
            if now != self._seen:
                self._seen = now
                log.info("template folder changed: rendering every ModelServing anew")
                self.changed(TemplateSet(self.folder))
