"""The daemon's in-memory machinery: work queue, cache store, event spam filter."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from generator import naming
from sync.cache import Store
from sync.events import BURST, DEDUPE_SECONDS, Event, SpamFilter
from sync.queue import WorkQueue


def test_a_waiting_key_is_added_once() -> None:
    queue = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert len(queue) == 2
    assert [queue.get(0), queue.get(0), queue.get(0)] == ["a", "b", None]


def test_a_key_is_never_worked_on_twice_at_once() -> None:
    queue = WorkQueue()
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")  # while in progress
    assert queue.get(0) is None
    queue.done("a")
    assert queue.get(0) == "a"


def test_retries_back_off_exponentially_and_forget_resets() -> None:
    now = [0.0]
    queue = WorkQueue(base_delay=1.0, max_delay=5.0, clock=lambda: now[0])
    assert [queue.retry("a") for _ in range(4)] == [1.0, 2.0, 4.0, 5.0]
    queue.forget("a")
    assert queue.retry("a") == 1.0


def test_add_after_hands_the_key_out_when_due() -> None:
    now = [0.0]
    queue = WorkQueue(clock=lambda: now[0])
    queue.add_after("a", 10)
    assert queue.get(0) is None
    now[0] = 10.5
    assert queue.get(0) == "a"


def test_a_held_key_ignores_adds_until_its_hold_ends() -> None:
    now = [0.0]
    queue = WorkQueue(clock=lambda: now[0])
    queue.add("a")
    queue.hold("a", 30)
    for _ in range(5):
        queue.add("a")
    queue.add_after("a", 1)
    now[0] = 29.0
    assert queue.get(0) is None
    now[0] = 30.0
    assert queue.get(0) == "a"
    queue.done("a")
    queue.add("a")  # the hold is over
    assert queue.get(0) == "a"


def test_close_releases_waiting_workers() -> None:
    queue = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.close()
    worker.join(5)
    assert got == [None]


def pod(name: str, uid: str, rv: str = "1", owner: str = "ms") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": rv,
            "labels": {naming.NAME_LABEL: owner},
        }
    }


def test_store_indexes_by_owner_and_follows_events() -> None:
    store = Store(naming.NAME_LABEL)
    store.apply_event("ADDED", pod("a", "1"))
    store.apply_event("ADDED", pod("b", "2", owner="other"))
    assert [o["metadata"]["name"] for o in store.owned_by("ns", "ms")] == ["a"]
    store.apply_event("MODIFIED", pod("a", "1", rv="2", owner="other"))
    assert store.owned_by("ns", "ms") == []
    assert len(store.owned_by("ns", "other")) == 2
    store.apply_event("DELETED", pod("a", "1"))
    assert store.get("ns", "a") is None


def test_an_object_stays_with_its_controller_when_its_owner_label_is_edited() -> None:
    store = Store(naming.NAME_LABEL)
    edited = pod("a", "1", owner="renamed")
    edited["metadata"]["ownerReferences"] = [
        {"kind": naming.KIND, "name": "ms", "uid": "u", "controller": True}
    ]
    store.apply_event("ADDED", edited)
    assert [o["metadata"]["name"] for o in store.owned_by("ns", "ms")] == ["a"]
    assert [o["metadata"]["name"] for o in store.owned_by("ns", "renamed")] == ["a"]


def test_a_deleted_objects_late_echo_does_not_resurrect_it() -> None:
    store = Store(naming.NAME_LABEL)
    store.upsert(pod("a", "1"))
    store.forget(pod("a", "1"))
    assert not store.apply_event("MODIFIED", pod("a", "1", rv="5"))
    assert store.get("ns", "a") is None
    assert store.apply_event("ADDED", pod("a", "2"))  # a new incarnation is welcome
    assert store.get("ns", "a") is not None


def test_an_old_incarnations_delete_leaves_the_new_one() -> None:
    store = Store(naming.NAME_LABEL)
    store.upsert(pod("a", "2"))
    assert not store.apply_event("DELETED", pod("a", "1"))
    assert store.get("ns", "a") is not None


def test_a_relist_reports_what_changed() -> None:
    store = Store(naming.NAME_LABEL)
    store.replace([pod("a", "1"), pod("b", "2")])
    events = store.replace([pod("a", "1", rv="2"), pod("c", "3")])
    assert sorted((kind, o["metadata"]["name"]) for kind, o in events) == [
        ("ADDED", "c"),
        ("DELETED", "b"),
        ("MODIFIED", "a"),
    ]


def test_a_late_answer_to_a_write_does_not_undo_what_the_watch_brought_since() -> None:
    # The daemon creates a pod (rv 10); before its thread stores the answer, the watch has
    # delivered the creation and the kubelet's status update (rv 11).
    store = Store(naming.NAME_LABEL)
    assert store.apply_event("ADDED", pod("a", "1", rv="10"))
    assert store.apply_event("MODIFIED", pod("a", "1", rv="11"))
    assert not store.upsert(pod("a", "1", rv="10"))
    assert store.get("ns", "a") == pod("a", "1", rv="11")
    # An answer newer than the cache is stored; the watch's echo of it changes nothing.
    assert store.upsert(pod("a", "1", rv="12"))
    assert not store.apply_event("MODIFIED", pod("a", "1", rv="11"))
    assert store.get("ns", "a") == pod("a", "1", rv="12")


def test_versions_order_numerically_only_within_one_incarnation() -> None:
    store = Store(naming.NAME_LABEL)
    store.upsert(pod("a", "1", rv="100"))
    assert store.apply_event("MODIFIED", pod("a", "1", rv="99")) is False
    assert store.apply_event("MODIFIED", pod("a", "1", rv="1000"))  # not compared as text
    assert store.upsert(pod("a", "2", rv="5"))  # a new incarnation replaces the old
    assert store.get("ns", "a") == pod("a", "2", rv="5")


@pytest.mark.parametrize("odd", ["", "0", "007", "-3", "1e3", "abc", "\u0661\u0662"])
def test_versions_that_cannot_be_ordered_fall_back_to_the_latest_write(odd: str) -> None:
    store = Store(naming.NAME_LABEL)
    store.upsert(pod("a", "1", rv="50"))
    assert store.upsert(pod("a", "1", rv=odd))
    assert store.apply_event("MODIFIED", pod("a", "1", rv="40"))
    assert store.get("ns", "a") == pod("a", "1", rv="40")


def test_a_relist_keeps_what_the_daemon_wrote_after_the_listing() -> None:
    store = Store(naming.NAME_LABEL)
    store.replace([pod("a", "1", rv="5"), pod("b", "2", rv="6")], "6")
    store.upsert(pod("a", "1", rv="8"))  # patched after the listing below was taken
    store.upsert(pod("c", "3", rv="9"))  # created after it
    events = store.replace([pod("a", "1", rv="5")], "7")
    assert sorted((kind, o["metadata"]["name"]) for kind, o in events) == [("DELETED", "b")]
    assert store.get("ns", "a") == pod("a", "1", rv="8")
    assert store.get("ns", "c") == pod("c", "3", rv="9")


def test_events_are_deduplicated_and_rate_limited_per_object() -> None:
    now = [0.0]
    spam = SpamFilter(clock=lambda: now[0])
    same = Event("RoleRunning", "m")
    assert spam.allow("ns/a", same)
    assert not spam.allow("ns/a", same)
    allowed = sum(spam.allow("ns/a", Event("RoleCreating", f"m{i}")) for i in range(100))
    assert allowed == BURST - 1
    assert spam.allow("ns/b", Event("RoleCreating", "m0"))
    now[0] += 600
    assert spam.allow("ns/a", same)


def test_the_spam_filter_forgets_what_expired_and_still_deduplicates_many() -> None:
    now = [0.0]
    spam = SpamFilter(clock=lambda: now[0])
    events = [(f"ns/ms-{i}", Event("RoleCreating", "m")) for i in range(20_000)]
    assert all(spam.allow(key, event) for key, event in events)  # 20,000 recent ones
    assert not any(spam.allow(key, event) for key, event in events[::97])  # all remembered
    now[0] += DEDUPE_SECONDS
    for i in range(400):  # each new Event forgets expired ones as it goes
        assert spam.allow(f"ns/new-{i}", Event("RoleRunning", "m"))
    assert len(spam._recent) < 20_000 - 20_000 // 2
    assert spam.allow(*events[-1])  # expired: said again
