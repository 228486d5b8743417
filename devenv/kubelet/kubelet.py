"""The kubelet as a whole: nodes, the pod watches, one worker per pod, and what happens to pod
processes when the kubelet starts (adopt, restart or clean up) and when it exits (stop or keep)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import aiohttp

from .api import KubeError, WatchExpired
from .context import KubeletContext
from .layout import PodPaths
from .node_heartbeat import NodeHeartbeat
from .pod_worker import PodWorker
from .processes import kill_marked
from .records import PodRecord, load_records
from .storage import Provisioner

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_CAP_SECONDS = 10.0
RETRY_SECONDS = 2.0


class Kubelet:
    def __init__(self, ctx: KubeletContext, on_exit: str = "stop") -> None:
        self._ctx = ctx
        self._on_exit = on_exit
        self._heartbeat = NodeHeartbeat(ctx.kube, [spec for _, spec in ctx.nodes.values()])
        self._workers: dict[str, PodWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._records: dict[str, tuple[Path, PodRecord]] = {}
        self._background: list[asyncio.Task[Any]] = []

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._start()
            await stop.wait()
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        await self._retry("register nodes", self._heartbeat.register)
        self._background.append(asyncio.create_task(self._heartbeat.run()))
        provisioner = Provisioner(self._ctx.kube, self._ctx.layout.pvc_root)
        self._background.append(asyncio.create_task(provisioner.run()))
        self._records = {
            record.uid: (pod_dir, record)
            for pod_dir, record in load_records(self._ctx.layout.pods_root)
        }
        listed: dict[str, tuple[list[dict[str, Any]], str]] = {}
        for node in self._ctx.nodes:
            listed[node] = await self._retry(f"list pods of {node}", self._list, node)
        live = {pod["metadata"]["uid"] for pods, _ in listed.values() for pod in pods}
        self._clean_orphans(live)
        for node, (pods, version) in listed.items():
            for pod in pods:
                self._dispatch(pod)
            self._background.append(asyncio.create_task(self._watch(node, version)))
        log.info(
            "watching pods on nodes %s (%d pods)", ", ".join(self._ctx.nodes), len(self._workers)
        )

    async def _retry(self, what: str, action: Any, *args: Any) -> Any:
        while True:
            try:
                return await action(*args)
            except (KubeError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("cannot %s yet: %s", what, exc)
                await asyncio.sleep(RETRY_SECONDS)

    # -- pods ------------------------------------------------------------------------------------

    async def _list(self, node: str) -> tuple[list[dict[str, Any]], str]:
        result = await self._ctx.kube.get(
            "/api/v1/pods", {"fieldSelector": f"spec.nodeName={node}"}
        )
        return list(result.get("items") or []), str(result["metadata"]["resourceVersion"])

    async def _relist(self, node: str) -> str:
        pods, version = await self._retry(f"list pods of {node}", self._list, node)
        present = {pod["metadata"]["uid"] for pod in pods}
        for uid, worker in list(self._workers.items()):
            if worker.node == node and uid not in present:
                worker.vanish()
        for pod in pods:
            self._dispatch(pod)
        return version

    async def _watch(self, node: str, version: str) -> None:
        query = {"fieldSelector": f"spec.nodeName={node}"}
        while True:
            try:
                async for event in self._ctx.kube.watch(
                    "/api/v1/pods", dict(query, resourceVersion=version)
                ):
                    pod = event["object"]
                    version = pod.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._dispatch(pod)
                    elif event["type"] == "DELETED":
                        worker = self._workers.get(pod["metadata"]["uid"])
                        if worker is not None:
                            worker.vanish(pod)
            except WatchExpired:
                log.info("pod watch of %s expired; listing again", node)
                version = await self._relist(node)
            except (
                KubeError,
                aiohttp.ClientError,
                asyncio.TimeoutError,
                OSError,
                ValueError,
            ) as exc:
                log.warning("pod watch of %s failed (%s); listing again", node, exc)
                await asyncio.sleep(RETRY_SECONDS)
                version = await self._relist(node)

    def _dispatch(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        if pod["spec"].get("nodeName") not in self._ctx.nodes:
            return
        saved = self._records.pop(uid, None)
        worker = PodWorker(self._ctx, pod, saved[1] if saved else None)
        self._workers[uid] = worker
        task = asyncio.create_task(worker.run(), name=f"pod {worker.label}")
        self._tasks[uid] = task
        task.add_done_callback(
            lambda done, uid=uid, worker=worker: self._finished(uid, worker, done)
        )

    def _finished(self, uid: str, worker: PodWorker, task: asyncio.Task[None]) -> None:
        if self._workers.get(uid) is worker:
            del self._workers[uid]
            del self._tasks[uid]
        if not task.cancelled() and task.exception() is not None:
            log.error("pod %s: worker failed: %r", worker.label, task.exception())

    def _clean_orphans(self, live: set[str]) -> None:
        """Remove what is left of pods deleted while the kubelet was not running."""
        for uid, (pod_dir, record) in list(self._records.items()):
            if uid in live:
                continue
            killed = sum(kill_marked(marker) for marker in record.markers)
            self._ctx.addresses.release(uid)
            PodPaths(pod_dir).remove_all_but_logs()
            del self._records[uid]
            log.info(
                "pod %s/%s was deleted while the kubelet was away: cleaned up, %d processes killed",
                record.namespace,
                record.name,
                killed,
            )
        for owner in self._ctx.addresses.owners:
            if owner not in live and owner not in self._records:
                self._ctx.addresses.release(owner)

    # -- exit ------------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        workers = list(self._workers.values())
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*self._background, *tasks, return_exceptions=True)
        if self._on_exit == "stop":
            log.info("stopping the processes of %d pods", len(workers))
            await asyncio.gather(
                *(w.stop_for_shutdown(SHUTDOWN_GRACE_CAP_SECONDS) for w in workers),
                return_exceptions=True,
            )
        else:
            log.info("leaving the processes of %d pods for the next kubelet", len(workers))
        with contextlib.suppress(Exception):
            await self._ctx.kube.close()
