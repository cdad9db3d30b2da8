"""What the daemon's store keeps after a DELETE: an object exists until the API server says
it is gone (docs/behaviour.md#scaling)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.apply import _record_delete
from sync.cache import Store

LIVE: dict[str, Any] = {
    "kind": "Pod",
    "metadata": {"name": "sample-0-prefill-1-0", "namespace": "ns", "uid": "u1"},
}
STAMP = "2026-01-01T00:00:00Z"


def answer(**meta: Any) -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {**LIVE["metadata"], "resourceVersion": "7", **meta}}


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        pytest.param(
            answer(deletionTimestamp=STAMP, deletionGracePeriodSeconds=30),
            True,
            id="a graceful deletion leaves the pod terminating",
        ),
        pytest.param(
            answer(deletionTimestamp=STAMP, deletionGracePeriodSeconds=0, finalizers=["x/y"]),
            True,
            id="a finalizer holds the pod whatever its grace period",
        ),
        pytest.param(
            answer(deletionTimestamp=STAMP, deletionGracePeriodSeconds=0),
            False,
            id="grace 0 and no finalizer: the answer is its last look, it is gone",
        ),
        pytest.param(
            {"kind": "Status", "status": "Success"}, False, id="a Status answer: it is gone"
        ),
    ],
)
def test_a_deleted_object_stays_in_the_store_while_it_still_exists(
    reply: dict[str, Any], kept: bool
) -> None:
    store = Store()
    store.upsert(dict(LIVE))
    _record_delete(store, LIVE, reply)
    found = store.get("ns", "sample-0-prefill-1-0")
    assert (found is not None) == kept
    if kept:
        assert found is not None and found["metadata"]["deletionTimestamp"] == STAMP
        # and its later watch events (finalizer removed, status) are not ignored
        later = answer(deletionTimestamp=STAMP, resourceVersion="8")
        assert store.apply_event("MODIFIED", later)
