"""A stopped server's pod is deleted once the Kubernetes API answers again: by its uid, retried
while the API is unreachable or failing, and never when a newer pod has taken its name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client.rest import ApiException

from hub_ext.spawner.pod_deletion import delete_later, delete_when_reachable

pytestmark = pytest.mark.unit

LOG = logging.getLogger("test.pod_deletion")


class FlakyAPI:
    """A CoreV1Api stand-in whose deletions fail with ``failures`` in turn, then succeed."""

    def __init__(self, failures: list[Callable[[], BaseException]]) -> None:
        self.failures = [make() for make in failures]
        self.calls: list[dict[str, Any]] = []

    async def delete_namespaced_pod(self, *, name: str, namespace: str, body: Any) -> None:
        self.calls.append({"name": name, "namespace": namespace, "body": body})
        if self.failures:
            raise self.failures.pop(0)


def unreachable() -> aiohttp.ClientError:
    return aiohttp.ClientConnectionError("Cannot connect to host")


def status(code: int) -> Callable[[], ApiException]:
    return lambda: ApiException(status=code)


@pytest.mark.parametrize(
    ("failures", "deleted", "calls"),
    [
        ([], True, 1),
        # unreachable, then an apiserver still starting: retried until it answers
        ([unreachable, status(503), TimeoutError], True, 4),
        # gone already, or a newer pod has the name (the uid precondition fails): done
        ([status(404)], True, 1),
        ([status(409)], True, 1),
        # refused for another reason: given up at once, not retried
        ([status(403)], False, 1),
    ],
)
async def test_the_pod_is_deleted_by_uid_once_the_api_answers(
    failures: list[Callable[[], BaseException]], deleted: bool, calls: int
) -> None:
    api = FlakyAPI(failures)
    done = await delete_when_reachable(
        api, "team-a", "jupyter-x", "uid-1", 30, LOG, retry_seconds=0
    )
    assert done is deleted
    assert len(api.calls) == calls
    body = api.calls[-1]["body"]
    assert api.calls[-1]["name"] == "jupyter-x" and api.calls[-1]["namespace"] == "team-a"
    assert body.preconditions.uid == "uid-1" and body.grace_period_seconds == 30


async def test_it_gives_up_after_the_limit_while_the_api_never_answers() -> None:
    api = FlakyAPI([unreachable] * 1000)
    done = await delete_when_reachable(
        api, "team-a", "jupyter-x", "uid-1", 0, LOG, retry_seconds=0.01, limit_seconds=0.05
    )
    assert done is False
    assert 1 <= len(api.calls) < 1000


async def test_a_deletion_in_the_background_runs_to_its_end() -> None:
    api = FlakyAPI([unreachable])
    task = delete_later(api, "team-a", "jupyter-x", "uid-1", 0, LOG)
    assert await task is True
    assert len(api.calls) == 2
