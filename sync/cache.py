"""Watch-fed local copies of the objects the daemon reads, so a reconcile makes no API read.

One `Informer` per resource: list, then watch from the list's resourceVersion; on `410 Gone`
(or any broken stream) list again and replace the store, reporting what changed in between
as events. The store is also written through by the daemon's own writes (`upsert` of what
the API returned, `forget` of what it deleted), so the next reconcile sees its own effects
even before the watch event arrives; tombstones keep a late watch event from resurrecting an
object the daemon has deleted.

Write-through races the watch: the answer to a write can reach the store after the watch has
already delivered a later change of the same object (a kubelet marking the new pod Ready, a
user editing the spec), and nothing would ever correct the older copy. So an object never
replaces a newer copy of itself, as ordered by resourceVersion: Kubernetes 1.35 made those
comparable between objects of one resource (KEP-5504). Versions that are not the positive
integers it specifies cannot be ordered, and then the latest write wins as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from generator import naming
from generator.kinds import Object
from sync import kube

StoreKey = tuple[str, str]  # (namespace, name)
Handler = Callable[[str, Object], None]  # (event type, object)
Transform = Callable[[Object, Object | None], Object]  # (object, the cached one before)
TOMBSTONE_SECONDS = 300.0

log = logging.getLogger("msctl.cache")


def version_number(text: object) -> int | None:
    """A resourceVersion as a number, if it is the canonical positive integer KEP-5504
    specifies (no sign, no leading zero); None when it cannot be ordered."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or text[0] == "0":
        return None
    return int(text)


def _earlier(a: object, b: object) -> bool:
    first, second = version_number(a), version_number(b)
    return first is not None and second is not None and first < second


def is_older(obj: Object, than: Object) -> bool:
    """Whether `obj` is an earlier state of the very object `than` is (same UID)."""
    mine, theirs = obj.get("metadata", {}), than.get("metadata", {})
    return mine.get("uid") == theirs.get("uid") and _earlier(
        mine.get("resourceVersion"), theirs.get("resourceVersion")
    )


def object_key(obj: Object) -> StoreKey:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def owner_keys(obj: Object, label: str) -> set[StoreKey]:
    """(namespace, owner name) from the owner label the daemon's objects carry, and from
    their controller reference: an edited label must not hide an object from its owner."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace", "")
    names = {meta.get("labels", {}).get(label)}
    names |= {
        ref.get("name")
        for ref in meta.get("ownerReferences", ())
        if ref.get("controller") and ref.get("kind") == naming.KIND
    }
    return {(namespace, name) for name in names if name}


class Store:
    """Objects of one kind by (namespace, name), and by owner label value.

    `transform` turns every object that enters into the form kept (`sync.trim.trim`: only
    what the daemon reads); whatever a caller hands in is not kept itself."""

    def __init__(self, index_label: str | None = None, transform: Transform | None = None) -> None:
        self._transform = transform
        self._lock = threading.RLock()
        self._objects: dict[StoreKey, Object] = {}
        self._index: dict[StoreKey, dict[StoreKey, Object]] = {}
        self._index_label = index_label
        self._tombstones: dict[str, float] = {}

    def _owners(self, obj: Object) -> set[StoreKey]:
        return owner_keys(obj, self._index_label) if self._index_label else set()

    def kept(self, obj: Object) -> Object:
        """The form of `obj` this store keeps (built from the one it has, when it has one)."""
        if self._transform is None:
            return obj
        return self._transform(obj, self._objects.get(object_key(obj)))

    def _put(self, obj: Object) -> None:
        key = object_key(obj)
        old = self._objects.get(key)
        if old is not None:
            self._unindex(old)
        self._objects[key] = obj
        for owner in self._owners(obj):
            self._index.setdefault(owner, {})[key] = obj

    def _unindex(self, obj: Object) -> None:
        for owner in self._owners(obj):
            bucket = self._index.get(owner)
            if bucket is not None:
                bucket.pop(object_key(obj), None)
                if not bucket:
                    del self._index[owner]

    def _drop(self, key: StoreKey) -> Object | None:
        old = self._objects.pop(key, None)
        if old is not None:
            self._unindex(old)
        return old

    def apply_event(self, kind: str, obj: Object) -> bool:
        """Apply a watch event; False when it was ignored (a deleted object's late echo)."""
        uid = obj.get("metadata", {}).get("uid", "")
        with self._lock:
            if kind == "DELETED":
                self._tombstones.pop(uid, None)
                current = self._objects.get(object_key(obj))
                if current is not None and current["metadata"].get("uid") != uid:
                    return False  # an older incarnation's delete; the new one stays
                self._drop(object_key(obj))
                return True
            if uid in self._tombstones:
                return False
            current = self._objects.get(object_key(obj))
            if current is not None and is_older(obj, current):
                return False  # the daemon's own write, already stored, is newer
            self._put(self.kept(obj))
            return True

    def replace(self, items: Iterable[Object], version: str = "") -> list[tuple[str, Object]]:
        """Swap in a fresh listing taken at resourceVersion `version`; return synthetic events
        for what changed. Objects the daemon wrote after the listing was taken stay."""
        fresh = {object_key(o): self.kept(o) for o in items}
        with self._lock:
            self._expire()
            events: list[tuple[str, Object]] = []
            for key, gone in list(self._objects.items()):
                if key not in fresh:
                    if _earlier(version, gone["metadata"].get("resourceVersion")):
                        continue  # created after the listing; the watch tells its fate
                    self._drop(key)
                    events.append(("DELETED", gone))
            for key, obj in fresh.items():
                if obj["metadata"].get("uid") in self._tombstones:
                    continue
                old = self._objects.get(key)
                if old is not None and is_older(obj, old):
                    continue
                if old is None or old["metadata"].get("resourceVersion") != obj["metadata"].get(
                    "resourceVersion"
                ):
                    events.append(("ADDED" if old is None else "MODIFIED", obj))
                    self._put(obj)
            return events

    def upsert(self, obj: Object) -> bool:
        """Record an object the daemon just wrote (the API's answer); False when the watch
        has already brought a later state of it, which stays."""
        with self._lock:
            current = self._objects.get(object_key(obj))
            if current is not None and is_older(obj, current):
                return False
            self._put(self.kept(obj))
            return True

    def forget(self, obj: Object) -> None:
        """Record that the daemon deleted this incarnation of an object."""
        uid = obj["metadata"].get("uid", "")
        with self._lock:
            current = self._objects.get(object_key(obj))
            if current is not None and current["metadata"].get("uid") == uid:
                self._drop(object_key(obj))
            if uid:
                self._tombstones[uid] = time.monotonic() + TOMBSTONE_SECONDS

    def _expire(self) -> None:
        now = time.monotonic()
        for uid in [u for u, until in self._tombstones.items() if until < now]:
            del self._tombstones[uid]

    def get(self, namespace: str, name: str) -> Object | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def owned_by(self, namespace: str, owner: str) -> list[Object]:
        with self._lock:
            return list(self._index.get((namespace, owner), {}).values())

    def all(self) -> list[Object]:
        with self._lock:
            return list(self._objects.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)


class Informer:
    """Keeps a Store in step with the API for one resource, in a background thread."""

    def __init__(
        self,
        client: kube.Kube,
        resource: kube.Resource,
        store: Store,
        handler: Handler,
        *,
        namespace: str | None = None,
        selector: str | None = None,
        field_selector: str | None = None,
        watch_seconds: int = 300,
    ) -> None:
        self.client = client
        self.resource = resource
        self.store = store
        self.handler = handler
        self.namespace = namespace
        self.selector = selector
        self.field_selector = field_selector
        self.watch_seconds = watch_seconds
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._stream: kube.WatchStream | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{resource.plural}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _relist(self) -> str:
        items, version = self.client.list(
            self.resource,
            self.namespace,
            selector=self.selector,
            field_selector=self.field_selector,
            transform=self.store.kept,  # a page at a time: never the whole listing in full
        )
        for kind, obj in self.store.replace(items, version):
            self.handler(kind, obj)
        self.synced.set()
        return version

    def _run(self) -> None:
        backoff = 0.2
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._relist()
                self._stream = self.client.watch(
                    self.resource,
                    self.namespace,
                    resource_version=version,
                    selector=self.selector,
                    field_selector=self.field_selector,
                    timeout_seconds=self.watch_seconds,
                )
                if self._stop.is_set():
                    self._stream.close()
                for kind, obj in self._stream:
                    if self._stop.is_set():
                        return
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if kind == "BOOKMARK":
                        continue
                    obj.setdefault("apiVersion", self.resource.api_version)
                    obj.setdefault("kind", self.resource.kind)
                    if self.store.apply_event(kind, obj):
                        self.handler(kind, obj)
                backoff = 0.2
            except kube.Gone:
                version = ""  # too old: list again
            except kube.ApiError as err:
                log.warning(
                    "watch of %s failed, retrying in %.1fs: %s", self.resource.plural, backoff, err
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                version = "" if isinstance(err, kube.NotFound) else version
