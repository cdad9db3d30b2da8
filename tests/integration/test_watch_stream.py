"""sync.kube's watch streams against the real API server: how they end."""

from __future__ import annotations

import threading

from kubernetes import client

from sync import kube


def test_a_watch_closed_from_another_thread_ends_quietly(
    api: client.ApiClient, namespace: str
) -> None:
    k = kube.Kube(api)
    _, version = k.list(kube.PODS, namespace)
    stream = k.watch(kube.PODS, namespace, resource_version=version)
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    stream.close()
    reader.join(5)
    assert not reader.is_alive()
    assert seen == []


def test_closing_a_watch_whose_connection_is_already_gone_is_quiet(
    api: client.ApiClient, namespace: str
) -> None:
    # What a reader thread leaves behind when its read fails: the socket closed under the
    # stream before the iteration hands the connection back.
    k = kube.Kube(api)
    _, version = k.list(kube.PODS, namespace)
    stream = k.watch(kube.PODS, namespace, resource_version=version)
    stream._response.close()
    stream.close()
    assert list(stream) == []


def test_closing_a_watch_the_server_ended_leaves_the_client_usable(
    api: client.ApiClient, namespace: str
) -> None:
    k = kube.Kube(api)
    _, version = k.list(kube.PODS, namespace)
    stream = k.watch(kube.PODS, namespace, resource_version=version, timeout_seconds=1)
    assert list(stream) == []  # the server closed it after a second, with nothing to tell
    stream.close()
    assert k.list(kube.PODS, namespace)[0] == []
