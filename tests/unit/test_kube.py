"""The pure parts of the API client: error mapping, paths, rate limiting."""

from __future__ import annotations

import json

import pytest

from sync import kube


def test_resource_paths() -> None:
    assert kube.PODS.path("ns", "p") == "/api/v1/namespaces/ns/pods/p"
    assert kube.MODELSERVINGS.path("ns", "m", "status") == (
        "/apis/workload.serving.volcano.sh/v1alpha1/namespaces/ns/modelservings/m/status"
    )
    assert kube.CRDS.path(None, "x") == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, kube.NotFound),
        (409, kube.Conflict),
        (410, kube.Gone),
        (422, kube.Invalid),
        (429, kube.Transient),
        (503, kube.Transient),
        (403, kube.ApiError),
    ],
)
def test_http_errors_become_typed_errors(status: int, kind: type[kube.ApiError]) -> None:
    err = kube._error(status, json.dumps({"reason": "R", "message": "m"}).encode())
    assert type(err) is kind
    assert (err.status, err.reason, err.message) == (status, "R", "m")


def test_already_exists_is_a_conflict_that_says_so() -> None:
    err = kube._error(409, b'{"reason": "AlreadyExists", "message": "pods \\"x\\" already exists"}')
    assert isinstance(err, kube.Conflict) and err.already_exists


def test_the_rate_limiter_allows_a_burst_then_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = kube.RateLimiter(10, 3, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == pytest.approx([0.1, 0.1])
    now[0] += 10  # idle: the bucket refills, to the burst and no further
    for _ in range(3):
        limiter.wait()
    assert len(slept) == 2
