"""Deleting a stopped server's pod once the Kubernetes API answers again.

A server stopped while the API is unreachable is forgotten by the hub at once; its pod is
deleted later, by its uid (never a newer pod of the same name), retried until the API answers.
Until then the pod reflector still holds the pod, so its GPUs stay counted and nothing is
admitted into them early.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

RETRY_SECONDS = 2.0
RETRY_LIMIT_SECONDS = 3600.0
# the deletions under way, kept so that their tasks are not collected before they end
_PENDING: set[asyncio.Task[bool]] = set()


async def delete_when_reachable(
    api: Any,
    namespace: str,
    name: str,
    uid: str,
    grace: int,
    log: logging.Logger | logging.LoggerAdapter[Any],
    *,
    retry_seconds: float = RETRY_SECONDS,
    limit_seconds: float = RETRY_LIMIT_SECONDS,
) -> bool:
    """Delete pod ``namespace/name`` with uid ``uid`` through ``api`` (a ``CoreV1Api``), every
    ``retry_seconds`` while the API does not answer or answers 5xx, for ``limit_seconds`` at
    most. True once the pod is deleted or gone (or replaced by a newer pod of the name)."""
    options = client.V1DeleteOptions(
        grace_period_seconds=grace, preconditions=client.V1Preconditions(uid=uid)
    )
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(retry_seconds)
        try:
            await api.delete_namespaced_pod(name=name, namespace=namespace, body=options)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            continue
        except ApiException as exc:
            if exc.status >= 500:
                continue
            if exc.status not in (404, 409):  # 404: gone; 409: a newer pod has the name
                log.error("pod %s/%s could not be deleted: %s", namespace, name, exc)
                return False
        log.info("pod %s/%s of a stopped server deleted", namespace, name)
        return True
    log.error("pod %s/%s not deleted: the Kubernetes API did not answer", namespace, name)
    return False


def delete_later(
    api: Any,
    namespace: str,
    name: str,
    uid: str,
    grace: int,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> asyncio.Task[bool]:
    """Start ``delete_when_reachable`` in the background; the task is kept until it ends."""
    task = asyncio.ensure_future(delete_when_reachable(api, namespace, name, uid, grace, log))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)
    return task
