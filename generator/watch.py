"""`msctl watch`: re-render on every save of a ModelServing or a template.

The watch command's module, among the offline commands (registered by `generator.commands`).
Every re-render is `sources.render_loaded`, the code of `msctl render` (a new TemplateSet each
time), so errors read exactly the same; what changed between two renders comes from
`drift.changes` (pure). When pods changed, the rollout impact comes from the `Impact` hook the
CLI boundary hands in (`sync` owns the planner; this module never imports it). This module is
the loop around them: watching files (watchfiles, in threads), turning a burst of events into
one re-render, printing one line per change, and writing `--output-dir` only after a good
render.
"""

from __future__ import annotations

import argparse
import hashlib
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

from generator import documents, drift, output
from generator.errors import EXIT_OK, InvalidInput, MsctlError, TemplateFailure, UsageError
from generator.pipeline import Rendered
from generator.sources import Impact, ServingSource, render_loaded
from generator.templating import builtin_root
from generator.terminal import Style

# watchfiles yields a batch once a step passes without a new change. It dedupes repeated
# events on one path, so a long burst of writes to one file can still arrive as several
# batches, and a save touching a spec and a template reaches two watcher threads; batches
# closer together than QUIET_S are one save here (QUIET_S must exceed two steps, the soonest
# a second batch can follow). LONGEST_S bounds the wait when writes never stop.
STEP_MS = 10
DEBOUNCE_MS = 1_600
QUIET_S = 0.05
LONGEST_S = 1.0
READY_TIMEOUT_S = 10.0

MAX_OBJECTS = 3  # objects named in one summary line
MAX_PATHS = 4  # patch paths shown per changed object

FAILURE_KINDS: dict[type[MsctlError], str] = {
    UsageError: "input error",
    InvalidInput: "invalid input",
    TemplateFailure: "template error",
}


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class Sources:
    """What a watch session reads; paths resolved, as the file watcher reports them."""

    files: frozenset[Path]  # -f files
    folders: tuple[Path, ...]  # -f folders, searched recursively as render does
    templates: tuple[Path, ...]  # the built-in templates, then --templates
    output_dir: Path | None  # never an input, even inside a watched folder

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Sources:
        files: set[Path] = set()
        folders: list[Path] = []
        for raw in args.files:
            if raw == documents.STDIN:
                raise UsageError("watch cannot watch stdin (-f -): give files or folders")
            path = Path(raw)
            if path.is_dir():
                folders.append(path.resolve())
            elif path.exists():
                files.add(path.resolve())
            else:
                raise UsageError(f"{raw}: no such file or folder")
        templates = [builtin_root().resolve()]
        if args.templates is not None:
            if not args.templates.is_dir():
                raise UsageError(f"--templates {args.templates}: no such folder")
            templates.append(args.templates.resolve())
        out = args.output_dir.resolve() if args.output_dir is not None else None
        return cls(frozenset(files), tuple(folders), tuple(templates), out)

    def recursive_roots(self) -> list[Path]:
        return sorted({*self.folders, *self.templates})

    def flat_roots(self) -> list[Path]:
        # Parents, not the files: a save by rename replaces the file's inode, and a watch
        # on the old inode would never fire again.
        return sorted({f.parent for f in self.files})

    def relevant(self, raw: str) -> bool:
        """Could a change of `raw` change the render? Editor droppings and output do not."""
        path = Path(raw)
        if self.output_dir is not None and _under(path, self.output_dir):
            return False
        if path in self.files:
            return True
        if path.name.startswith(".") or path.name.endswith("~"):
            return False
        in_folder = any(_under(path, f) for f in self.folders)
        # A suffix-less name may be a folder moved in whole; the fingerprint sorts it out.
        if in_folder and (path.suffix in documents.SUFFIXES or not path.suffix):
            return True
        return any(_under(path, t) for t in self.templates)

    def fingerprint(self, spec_paths: Sequence[str]) -> bytes:
        """A digest of every byte a render reads, so events that change nothing are ignored."""
        digest = hashlib.blake2b(digest_size=16)
        try:
            paths = [Path(p) for p in documents.expand_paths(spec_paths)]
        except documents.InputError as err:
            paths = []
            digest.update(str(err).encode())
        for root in self.templates:
            paths.extend(
                sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
            )
        for path in paths:
            digest.update(str(path).encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError as err:
                digest.update(f"unreadable: {err}".encode())
            digest.update(b"\0")
        return digest.digest()


class Watcher:
    """watchfiles in background threads, one per root kind; relevant changes on a queue.

    The threads never see signals (only the main thread does), so Ctrl-C lands in the main
    thread's queue wait, and `close` stops the threads through watchfiles' stop event.
    """

    def __init__(self, sources: Sources) -> None:
        self._sources = sources
        self._queue: queue.Queue[set[str] | Exception] = queue.Queue()
        self._stop = threading.Event()
        # A private folder every thread also watches: a change seen there proves the thread's
        # watches are all in place (watchfiles sets them up inside its generator).
        self._probe = Path(tempfile.mkdtemp(prefix="msctl-watch-")).resolve()
        self._ready: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        for roots, recursive in (
            (sources.recursive_roots(), True),
            (sources.flat_roots(), False),
        ):
            if roots:
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(roots, recursive, ready), daemon=True
                )
                self._ready.append(ready)
                self._threads.append(thread)
                thread.start()

    def _run(self, roots: list[Path], recursive: bool, ready: threading.Event) -> None:
        import watchfiles  # noqa: PLC0415 - only `msctl watch` needs it

        probe = str(self._probe)

        def accept(_change: watchfiles.Change, path: str) -> bool:
            if path.startswith(probe):
                ready.set()
                return False
            return self._sources.relevant(path)

        try:
            for batch in watchfiles.watch(
                *roots,
                self._probe,
                watch_filter=accept,
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                stop_event=self._stop,
                recursive=recursive,
                raise_interrupt=False,
            ):
                self._queue.put({path for _, path in batch})
        except Exception as err:  # reported by the main thread, which owns the output
            self._queue.put(err)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        touches = 0
        while not all(r.is_set() for r in self._ready):
            if time.monotonic() > deadline:
                raise UsageError("cannot watch files: the watcher did not start")
            touches += 1
            (self._probe / "probe").write_text(str(touches))
            try:
                item = self._queue.get(timeout=0.02)
            except queue.Empty:
                continue
            self._queue.put(item)  # a real change or an error: the main loop handles it
            if isinstance(item, Exception):
                self._raise(item)
        # Its job is done; gone now, it cannot be left behind by a watch that is killed.
        shutil.rmtree(self._probe, ignore_errors=True)

    def next_batch(self) -> set[str]:
        """Block until something relevant changed; then gather the rest of the burst."""
        paths = self._get(None)
        start = time.monotonic()
        quiet_until = start + QUIET_S
        while (now := time.monotonic()) < min(quiet_until, start + LONGEST_S):
            try:
                paths |= self._get(min(quiet_until, start + LONGEST_S) - now)
            except queue.Empty:
                break
            quiet_until = time.monotonic() + QUIET_S
        return paths

    def _get(self, timeout: float | None) -> set[str]:
        while True:
            try:
                # Short waits even when blocking "forever": signals reach the main thread
                # between them on every platform.
                item = self._queue.get(timeout=0.5 if timeout is None else timeout)
                break
            except queue.Empty:
                if timeout is not None:
                    raise
        if isinstance(item, Exception):
            self._raise(item)
        return item

    @staticmethod
    def _raise(err: Exception) -> NoReturn:
        raise UsageError(f"cannot watch files: {err}")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=1.0)
        shutil.rmtree(self._probe, ignore_errors=True)


class Interrupts:
    """SIGINT and SIGTERM end the watch (exit 0), but never halfway through writing output."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending = False
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if self.deferring:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
            if self.pending:
                raise KeyboardInterrupt


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _paths(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:MAX_PATHS])
    return shown + (f" and {len(paths) - MAX_PATHS} more" if len(paths) > MAX_PATHS else "")


def _changed(changed: Sequence[drift.ObjectChange]) -> list[str]:
    # A template edit usually moves the same paths in many objects of a kind: one entry each.
    groups: dict[tuple[str, tuple[str, ...]], list[drift.ObjectKey]] = {}
    for change in changed:
        groups.setdefault((change.key[0], change.paths), []).append(change.key)
    entries: list[str] = []
    for (kind, paths), keys in list(groups.items())[:MAX_OBJECTS]:
        more = f" and {_plural(len(keys) - 1, f'more {kind}')}" if len(keys) > 1 else ""
        entries.append(f"{drift.object_label(keys[0])}{more}: {_paths(paths)}")
    hidden = sum(len(keys) for keys in list(groups.values())[MAX_OBJECTS:])
    if hidden:
        entries.append(f"{_plural(hidden, 'more object')}")
    return entries


def _named(keys: Sequence[drift.ObjectKey]) -> list[str]:
    if len(keys) <= MAX_OBJECTS:
        return [drift.object_label(k) for k in keys]
    return [_plural(n, kind) for kind, n in Counter(k[0] for k in keys).items()]


def change_summary(change: drift.BundleChanges, style: Style) -> str:
    """`1 changed (Pod ns/name: /spec/...), 0 added, 0 removed` for one ModelServing."""
    parts = [
        (len(change.changed), _changed(change.changed), "changed", "; ", style.yellow),
        (len(change.added), _named(change.added), "added", ", ", style.green),
        (len(change.removed), _named(change.removed), "removed", ", ", style.red),
    ]
    return ", ".join(
        (color(f"{count} {word}") if count else f"0 {word}")
        + (f" ({separator.join(entries)})" if entries else "")
        for count, entries, word, separator, color in parts
    )


def _pods(change: drift.BundleChanges) -> bool:
    """Did pods change? Only then can a rollout follow."""
    keys = [*(c.key for c in change.changed), *change.added, *change.removed]
    return any(kind == "Pod" for kind, _, _ in keys)


def kinds_summary(objects: Sequence[Mapping[str, Any]]) -> str:
    kinds = Counter(str(o.get("kind")) for o in objects)
    return ", ".join(_plural(n, kind) for kind, n in kinds.items())


class Session:
    """The state between re-renders: the last good render and what was last looked at."""

    def __init__(
        self,
        args: argparse.Namespace,
        sources: Sources,
        out: TextIO,
        err: TextIO,
        interrupts: Interrupts,
    ) -> None:
        self.args = args
        self.sources = sources
        self.out, self.err = out, err
        self.out_style, self.err_style = Style.for_stream(out), Style.for_stream(err)
        self.interrupts = interrupts
        self.good: Rendered | None = None
        self.loaded: dict[str, ServingSource] = {}
        self.impact: Impact | None = getattr(args, "impact", None)
        self.seen: bytes | None = None
        self.written: set[Path] = set()

    def say(self, text: str, stream: TextIO | None = None) -> None:
        stream = stream or self.out
        style = self.err_style if stream is self.err else self.out_style
        print(f"{style.dim(time.strftime('%H:%M:%S'))} {text}", file=stream, flush=True)

    def label(self, namespace: str, name: str) -> str:
        shown = name if namespace == self.args.namespace else f"{namespace}/{name}"
        return self.out_style.bold(shown)

    def update(self) -> None:
        """Re-render if the sources changed since the last look; print what happened."""
        fingerprint = self.sources.fingerprint(self.args.files)
        if fingerprint == self.seen:
            return  # events without new content: a touch, an editor's scratch file, a repeat
        self.seen = fingerprint
        started = time.perf_counter()
        try:
            result, loaded = render_loaded(self.args)
        except MsctlError as failure:
            self._failed(failure.lines, FAILURE_KINDS.get(type(failure), "error"))
            return
        except (OSError, UnicodeError) as err:
            # A file gone or half-written between the event and the read (an editor that
            # deletes before it writes): say so and let the next event retry.
            self.seen = None
            self._failed([f"cannot read the sources: {err}"], "input error")
            return
        previous, first = self.good, self.good is None
        changes = drift.changes(previous.bundles if previous else [], result.bundles)
        moved = [c for c in changes if not c.empty]
        if self.args.output_dir is not None and (first or moved):
            try:
                self._write(result)
            except OSError as err:
                self.seen = None  # retry on the next event, even without new content
                self._failed([f"{self.args.output_dir}: cannot write: {err}"], "output error")
                return
        self.good, before, self.loaded = result, self.loaded, loaded
        took = self.out_style.dim(f"({(time.perf_counter() - started) * 1000:.0f} ms)")
        if first:
            self._rendered(result, took)
        elif not moved:
            self.say(f"no change in the rendered objects {took}")
        for change in [] if first else moved:
            label = self.label(change.namespace, change.name)
            self.say(f"{label}: {change_summary(change, self.out_style)} {took}")
            key = f"{change.namespace}/{change.name}"
            if self.impact is not None and key in before and key in loaded and _pods(change):
                self.say(f"{label}: rollout impact: {self.impact(before[key], loaded[key])}")

    def _rendered(self, result: Rendered, took: str) -> None:
        if not result.bundles:
            self.say(f"no ModelServing in the sources yet {took}")
        for bundle in result.bundles:
            where = ""
            if self.args.output_dir is not None:
                where = f" into {self.args.output_dir / bundle.folder}"
            self.say(
                f"{self.label(bundle.namespace, bundle.name)}: rendered "
                f"{_plural(len(bundle.objects), 'object')} ({kinds_summary(bundle.objects)})"
                f"{where} {took}"
            )

    def _write(self, result: Rendered) -> None:
        root: Path = self.args.output_dir
        folders = {root / b.folder for b in result.bundles}
        with self.interrupts.deferred():
            output.write_bundles(root, result.bundles)
            # Mirrors the sources: a ModelServing deleted or renamed while watching loses the
            # folder this session wrote for it (folders written by others are left alone).
            for gone in self.written - folders:
                shutil.rmtree(gone, ignore_errors=True)
            self.written = folders

    def _failed(self, lines: Sequence[str], kind: str) -> None:
        for line in lines:
            self.say(self.err_style.red(line), self.err)
        if self.good is None:
            self.say(f"{kind}: nothing rendered yet; waiting for the next save", self.err)
        else:
            self.say(
                f"{kind}: not re-rendered; the last good output stays until the next good save",
                self.err,
            )


def banner(args: argparse.Namespace) -> str:
    watched = [*args.files]
    if args.templates is not None:
        watched.append(f"{args.templates} (templates)")
    return f"watching {', '.join(watched)} and the built-in templates for changes; Ctrl-C stops"


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`msctl watch`: render once, then on every relevant change until Ctrl-C or SIGTERM."""
    sources = Sources.from_args(args)
    interrupts = Interrupts()
    interrupts.install()
    session = Session(args, sources, out or sys.stdout, err or sys.stderr, interrupts)
    watcher: Watcher | None = None
    try:
        watcher = Watcher(sources)
        watcher.wait_ready()  # before the first render, so no save after it goes unseen
        session.update()
        session.say(session.out_style.dim(banner(args)))
        while True:
            watcher.next_batch()
            session.update()
    except KeyboardInterrupt:
        interrupts.deferring = True
        session.say("stopped")
        return EXIT_OK
    finally:
        interrupts.deferring = True
        if watcher is not None:
            watcher.close()
        interrupts.restore()
