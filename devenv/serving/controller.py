"""The serving controller's Kubernetes side: watches, reads, and applies the pure plan.

InferenceServices in every namespace and the predictor pods (label
``serving.kserve.io/inferenceservice``) are watched; an event queues the InferenceService's key,
and every ``RESYNC_SECONDS`` all of them are queued again (ServiceAccounts and Secrets are not
watched: a change to them is seen at the next resync). A watch that fails or expires lists again.
One worker reconciles the queued keys one at a time; a key whose reconciliation fails is queued
again after ``RETRY_SECONDS``. Nothing an object holds stops the controller: an error is logged
and the key retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from ..kubelet.api import Kube, KubeError, WatchExpired
from ..kubelet.clock import rfc3339
from ..kubelet.layout import StateLayout
from .credentials import listed_secrets
from .pods import INFERENCE_SERVICE_LABEL, SOURCE_URI_ANNOTATION, Programs
from .predictor import API_GROUP
from .reconcile import Facts, Plan, reconcile
from .status import read_pod

log = logging.getLogger(__name__)

ISVC_PATH = f"/apis/{API_GROUP}/v1beta1/inferenceservices"
CLUSTER_RUNTIMES_PATH = f"/apis/{API_GROUP}/v1alpha1/clusterservingruntimes"
JSON_PATCH = "application/json-patch+json"
RESYNC_SECONDS = 10.0
RETRY_SECONDS = 3.0
LOG_TAIL_BYTES = 2048
NETWORK_ERRORS = (KubeError, aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)

Key = tuple[str, str]


def isvc_path(namespace: str, name: str) -> str:
    return f"/apis/{API_GROUP}/v1beta1/namespaces/{namespace}/inferenceservices/{name}"


class PodLogs:
    """The end of a container's log in the process kubelet's state folder: the local stand-in
    for the termination message a kubelet fills in from the log (``FallbackToLogsOnError``)."""

    def __init__(self, kubelet_state: Path | None) -> None:
        self._layout = StateLayout(kubelet_state) if kubelet_state else None

    def tail(self, pod: dict[str, Any], container: str) -> str | None:
        if self._layout is None:
            return None
        meta = pod.get("metadata") or {}
        path = self._layout.pod(meta["namespace"], meta["name"], meta["uid"]).log(container)
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - LOG_TAIL_BYTES))
                return fh.read().decode(errors="replace")
        except OSError:
            return None


class ServingController:
    def __init__(self, kube: Kube, programs: Programs, logs: PodLogs) -> None:
        self._kube = kube
        self._programs = programs
        self._logs = logs
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._create_errors: dict[Key, tuple[str, str]] = {}

    # -- the queue -------------------------------------------------------------------------------

    def enqueue(self, key: Key) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def enqueue_later(self, key: Key, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self.enqueue, key)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self._watch(ISVC_PATH, {}, _isvc_key), name="watch isvc"),
            asyncio.create_task(
                self._watch("/api/v1/pods", {"labelSelector": INFERENCE_SERVICE_LABEL}, _pod_key),
                name="watch pods",
            ),
            asyncio.create_task(self._resync(), name="resync"),
            asyncio.create_task(self._work(), name="worker"),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _list(
        self, path: str, query: dict[str, Any], key_of: Callable[[Any], Key | None]
    ) -> str:
        while True:
            try:
                result = await self._kube.get(path, query)
            except NETWORK_ERRORS as exc:
                log.warning("cannot list %s yet: %s", path, exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for item in result.get("items") or []:
                key = key_of(item)
                if key is not None:
                    self.enqueue(key)
            return str((result.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(
        self, path: str, query: dict[str, Any], key_of: Callable[[Any], Key | None]
    ) -> None:
        version = await self._list(path, query, key_of)
        while True:
            try:
                async for event in self._kube.watch(path, dict(query, resourceVersion=version)):
                    obj = event.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        key = key_of(obj)
                        if key is not None:
                            self.enqueue(key)
            except WatchExpired:
                log.info("watch of %s expired; listing again", path)
                version = await self._list(path, query, key_of)
            except NETWORK_ERRORS as exc:
                log.warning("watch of %s failed (%s); listing again", path, exc)
                await asyncio.sleep(RETRY_SECONDS)
                version = await self._list(path, query, key_of)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            await self._list(ISVC_PATH, {}, _isvc_key)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except NETWORK_ERRORS as exc:
                log.warning("inferenceservice %s/%s: %s; retrying", *key, exc)
                self.enqueue_later(key, RETRY_SECONDS)
            except Exception:
                log.exception("inferenceservice %s/%s: unexpected error; retrying", *key)
                self.enqueue_later(key, RETRY_SECONDS)

    # -- one object ------------------------------------------------------------------------------

    async def _items(self, path: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            return list((await self._kube.get(path, query)).get("items") or [])
        except KubeError as exc:
            if exc.status == 404:
                return []
            raise

    async def facts(self, isvc: dict[str, Any]) -> Facts:
        meta = isvc["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        account_name = str(predictor.get("serviceAccountName") or "default")
        account = await self._kube.get_or_none(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account_name}"
        )
        secrets = {
            secret: await self._kube.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{secret}")
            for secret in listed_secrets(account)
        }
        pods = await self._items(
            f"/api/v1/namespaces/{namespace}/pods",
            {"labelSelector": f"{INFERENCE_SERVICE_LABEL}={name}"},
        )
        tails: dict[str, dict[str, str]] = {}
        for pod in pods:
            report = read_pod(pod)
            if report.failure is not None:
                tail = self._logs.tail(pod, report.failure.container)
                if tail:
                    tails[pod["metadata"]["name"]] = {report.failure.container: tail}
        return Facts(
            pods=pods,
            service_account=account,
            secrets=secrets,
            namespaced_runtimes=await self._items(
                f"/apis/{API_GROUP}/v1alpha1/namespaces/{namespace}/servingruntimes"
            ),
            cluster_runtimes=await self._items(CLUSTER_RUNTIMES_PATH),
            log_tails=tails,
        )

    async def reconcile(self, key: Key) -> None:
        namespace, name = key
        isvc = await self._kube.get_or_none(isvc_path(namespace, name))
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            self._create_errors.pop(key, None)
            return
        facts = await self.facts(isvc)
        plan = reconcile(isvc, facts, self._programs, rfc3339())
        if plan.create is not None:
            plan = await self._create(key, isvc, facts, plan)
        for pod in plan.delete:
            await self._delete(pod)
        await self._write_status(isvc, plan.status)

    async def _create(self, key: Key, isvc: dict[str, Any], facts: Facts, plan: Plan) -> Plan:
        assert plan.create is not None
        pod_name = plan.create["metadata"]["name"]
        namespace = plan.create["metadata"]["namespace"]
        try:
            await self._kube.create(f"/api/v1/namespaces/{namespace}/pods", plan.create)
        except KubeError as exc:
            if exc.status == 409:
                return plan
            message = str(exc)
            if self._create_errors.get(key) != (pod_name, message):
                log.warning("inferenceservice %s/%s: cannot create pod %s: %s", *key, pod_name, exc)
            self._create_errors[key] = (pod_name, message)
            self.enqueue_later(key, RETRY_SECONDS)
            failed = reconcile(
                isvc, replace(facts, create_error=message), self._programs, rfc3339()
            )
            return Plan(None, failed.delete, failed.status)
        self._create_errors.pop(key, None)
        log.info(
            "inferenceservice %s/%s: created predictor pod %s for %s",
            *key,
            pod_name,
            plan.create["metadata"]["annotations"].get(SOURCE_URI_ANNOTATION),
        )
        return plan

    async def _delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": meta["uid"]}}
        try:
            await self._kube.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body
            )
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise
            return
        log.info("deleted predictor pod %s/%s", meta["namespace"], meta["name"])

    async def _write_status(self, isvc: dict[str, Any], status: dict[str, Any]) -> None:
        if isvc.get("status") == status:
            return
        meta = isvc["metadata"]
        # "add" replaces the whole status, so fields of an earlier status do not linger
        patch = [{"op": "add", "path": "/status", "value": status}]
        try:
            await self._kube.request(
                "PATCH",
                isvc_path(meta["namespace"], meta["name"]) + "/status",
                body=patch,
                content_type=JSON_PATCH,
            )
        except KubeError as exc:
            if exc.status == 404:
                return
            raise
        ready: dict[str, Any] = next((c for c in status["conditions"] if c["type"] == "Ready"), {})
        log.info(
            "inferenceservice %s/%s: generation %s, Ready %s%s",
            meta["namespace"],
            meta["name"],
            status.get("observedGeneration"),
            ready.get("status"),
            f" ({ready.get('reason')}: {ready.get('message')})" if ready.get("reason") else "",
        )


def _isvc_key(obj: dict[str, Any]) -> Key | None:
    meta = obj.get("metadata") or {}
    if not meta.get("namespace") or not meta.get("name"):
        return None
    return str(meta["namespace"]), str(meta["name"])


def _pod_key(obj: dict[str, Any]) -> Key | None:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(INFERENCE_SERVICE_LABEL)
    if not meta.get("namespace") or not name:
        return None
    return str(meta["namespace"]), str(name)
