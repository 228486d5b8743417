"""One pod bound to one of the kubelet's nodes: preparing it, running its init containers and
containers as local processes, restarting them by the pod's restart policy, reporting its status
and events, and stopping and removing it when it is deleted."""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import time
from typing import Any

import aiohttp

from .api import KubeError
from .clock import rfc3339
from .containers import Container, new_container, next_backoff, restarts, termination_from
from .context import KubeletContext
from .env import ContainerConfigError
from .events import NORMAL, WARNING
from .node_objects import HOST_IP
from .podspec import PodContext, StartError, container_marker, plan_container
from .processes import ContainerProcess, kill_marked, read_exit_file, start_container
from .records import ContainerRecord, PodRecord, save_record
from .references import Lookups
from .resolver import fetch_lookups
from .status import PodView, Termination, pod_phase, pod_status
from .volume_setup import materialise
from .volumes import VolumeContext, VolumeError, VolumeSource, plan_volumes

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
RETRY_SECONDS = 5.0
DEFAULT_GRACE_SECONDS = 30
MINIMUM_FORCED_GRACE_SECONDS = 2
WARNING_REPEAT_SECONDS = 60.0


def _one_line(text: str, limit: int = 200) -> str:
    flat = text.replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _resource_version(pod: dict[str, Any]) -> int:
    try:
        return int(pod.get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


class PodWorker:
    def __init__(self, ctx: KubeletContext, pod: dict[str, Any], record: PodRecord | None) -> None:
        meta = pod["metadata"]
        self._ctx = ctx
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.node: str = pod["spec"]["nodeName"]
        self.paths = ctx.layout.pod(self.namespace, self.name, self.uid)
        self.label = f"{self.namespace}/{self.name}"
        self._wake = asyncio.Event()
        self._vanished = False
        self._last_status: dict[str, Any] | None = None
        self._warned: dict[tuple[str, str | None], tuple[str, float]] = {}
        self._restart_policy: str = pod["spec"].get("restartPolicy") or "Always"
        self._host_network = bool(pod["spec"].get("hostNetwork"))
        self._prepared: tuple[Lookups, dict[str, VolumeSource]] | None = None
        self._prepare_retry_at = 0.0
        self.init_done = False
        self.init_failed = False
        self.finished = False
        self.pod_ip: str | None = None
        self.start_time: str = (pod.get("status") or {}).get("startTime") or rfc3339()
        spec = pod["spec"]
        has_init = bool(spec.get("initContainers"))
        self._containers: list[Container] = []
        for item in spec.get("initContainers") or []:
            self._containers.append(new_container(item, True, "PodInitializing"))
        for item in spec.get("containers") or []:
            reason = "PodInitializing" if has_init else "ContainerCreating"
            self._containers.append(new_container(item, False, reason))
        if record is not None:
            self._restore(record)
        elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self._restore_finished(pod["status"])

    @property
    def _init_containers(self) -> list[Container]:
        return [c for c in self._containers if c.init]

    @property
    def _main_containers(self) -> list[Container]:
        return [c for c in self._containers if not c.init]

    def _marker(self, container: Container) -> str:
        return container_marker(self.uid, container.name)

    # -- inputs from the pod watch -------------------------------------------------------------

    def update(self, pod: dict[str, Any]) -> None:
        if _resource_version(pod) >= _resource_version(self.pod):
            self.pod = pod
        self._wake.set()

    def vanish(self, last: dict[str, Any] | None = None) -> None:
        """The pod object is gone from the API; ``last`` is its final state when known."""
        if last is not None:
            self.update(last)
        self._vanished = True
        self._wake.set()

    # -- persistence -----------------------------------------------------------------------------

    def _restore(self, record: PodRecord) -> None:
        self.pod_ip = record.pod_ip
        self.start_time = record.start_time or self.start_time
        self.init_done = record.init_done
        self.init_failed = record.init_failed
        by_name = {c.name: c for c in self._containers}
        status = self.pod.get("status") or {}
        reported_ready = {
            s["name"]
            for s in (status.get("containerStatuses") or [])
            + (status.get("initContainerStatuses") or [])
            if s.get("ready")
        }
        for name, saved in record.containers.items():
            container = by_name.get(name)
            if container is None:
                continue
            view = container.view
            view.restart_count = saved.restart_count
            if saved.terminated:
                view.terminated = Termination.from_state(saved.terminated)
            if saved.last_terminated:
                view.last_terminated = Termination.from_state(saved.last_terminated)
            container.has_run = bool(saved.started_at or saved.terminated or saved.last_terminated)
            if saved.pid and saved.proc_start:
                container.process = ContainerProcess(
                    pid=saved.pid, started=saved.proc_start, marker=self._marker(container)
                )
                view.running_since = saved.started_at
                view.container_id = container.process.container_id
                container.started_at = time.monotonic()
                if container.process.alive():
                    log.info("pod %s: adopted container %s (pid %d)", self.label, name, saved.pid)
                    view.ready = container.probe is None or name in reported_ready
                    if container.probe:
                        container.probe.resume(ready=view.ready)
                else:
                    log.info(
                        "pod %s: container %s (pid %d) ended while the kubelet was away",
                        self.label,
                        name,
                        saved.pid,
                    )
            elif view.last_terminated and not view.terminated:
                view.waiting_reason = "CrashLoopBackOff"
        self.finished = self.init_failed or (
            self.init_done
            and all(c.view.terminated and not c.process for c in self._main_containers)
        )

    def _restore_finished(self, status: dict[str, Any]) -> None:
        """A pod that ended before this kubelet's state was lost: never run it again."""
        reported = {
            s["name"]: s
            for s in (status.get("initContainerStatuses") or [])
            + (status.get("containerStatuses") or [])
        }
        for container in self._containers:
            state = reported.get(container.name, {})
            terminated = (state.get("state") or {}).get("terminated")
            container.view.restart_count = int(state.get("restartCount", 0))
            container.view.terminated = (
                Termination.from_state(terminated)
                if terminated
                else Termination(0 if status["phase"] == "Succeeded" else 1, "Unknown", rfc3339())
            )
            container.has_run = True
        self.init_done = True
        self.finished = True

    def _record(self) -> PodRecord:
        containers = {}
        for c in self._containers:
            view = c.view
            containers[c.name] = ContainerRecord(
                name=c.name,
                init=c.init,
                restart_count=view.restart_count,
                pid=c.process.pid if c.process else None,
                proc_start=c.process.started if c.process else None,
                started_at=view.running_since,
                terminated=view.terminated.as_state() if view.terminated else None,
                last_terminated=view.last_terminated.as_state() if view.last_terminated else None,
            )
        return PodRecord(
            uid=self.uid,
            namespace=self.namespace,
            name=self.name,
            node=self.node,
            pod_ip=self.pod_ip,
            start_time=self.start_time,
            init_done=self.init_done,
            init_failed=self.init_failed,
            containers=containers,
        )

    def _save(self) -> None:
        save_record(self.paths.record, self._record())

    # -- main loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        if self._host_network:
            self.pod_ip = HOST_IP
        else:
            self.pod_ip = self._ctx.addresses.allocate(self._ctx.address_block(self.node), self.uid)
        log.info("pod %s: on node %s with address %s", self.label, self.node, self.pod_ip)
        self._save()
        while True:
            if self._vanished:
                grace = max(self._grace_period(), MINIMUM_FORCED_GRACE_SECONDS)
                log.info("pod %s: object deleted from the API; stopping containers", self.label)
                await self._stop_containers(self._containers, grace, remember=True)
                self._release()
                return
            if self.pod["metadata"].get("deletionTimestamp"):
                await self._delete()
                return
            try:
                await self._step()
                await self._report()
            except (KubeError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("pod %s: %s", self.label, exc)
            except Exception:
                log.exception("pod %s: unexpected error", self.label)
            await self._sleep(TICK_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _step(self) -> None:
        await self._reap()
        if not self.init_done and not self.init_failed:
            await self._advance_init()
        if self.init_done and not self.finished:
            await self._advance_main()
        await self._probe()

    # -- containers ------------------------------------------------------------------------------

    def _termination_of(self, container: Container) -> Termination:
        """How the container's last process ended."""
        process = container.process
        assert process is not None
        return termination_from(
            read_exit_file(self.paths.exit_record(container.name)),
            process.return_code(),
            container.view.running_since,
            process.container_id,
        )

    def _should_restart(self, container: Container, exit_code: int) -> bool:
        if self.finished or self.init_failed:
            return False
        return restarts(self._restart_policy, container, exit_code)

    async def _reap(self) -> None:
        for container in self._containers:
            process = container.process
            if process is None or process.alive():
                continue
            termination = self._termination_of(container)
            kill_marked(process.marker)
            container.process = None
            await self._exited(container, termination)

    async def _exited(self, container: Container, termination: Termination) -> None:
        view = container.view
        view.running_since = None
        view.ready = False
        log.info(
            "pod %s: container %s exited with code %d (%s)",
            self.label,
            container.name,
            termination.exit_code,
            termination.reason,
        )
        if termination.reason == "StartError":
            await self._warn("Failed", f"Error: {termination.message}", container)
        if container.init and not container.sidecar and termination.exit_code == 0:
            view.terminated = termination
        elif self._should_restart(container, termination.exit_code):
            ran_for = time.monotonic() - container.started_at
            container.backoff = next_backoff(container.backoff, ran_for)
            container.restart_at = time.monotonic() + container.backoff
            view.terminated = None
            view.last_terminated = termination
            view.waiting_reason = "CrashLoopBackOff"
            view.waiting_message = (
                f"back-off {container.backoff:g}s restarting failed container={container.name} "
                f"pod={self.name}_{self.namespace}({self.uid})"
            )
            await self._warn(
                "BackOff",
                f"Back-off restarting failed container {container.name} in pod "
                f"{self.name}_{self.namespace}({self.uid})",
                container,
            )
        else:
            view.terminated = termination
            if container.init and not container.sidecar:
                self.init_failed = True
                log.info(
                    "pod %s: init container %s failed; the pod failed", self.label, container.name
                )
                await self._stop_containers(self._containers, 0, remember=True)
        self._save()

    async def _prepare(self) -> tuple[Lookups, dict[str, VolumeSource]] | None:
        """Fetch what the pod refers to and set up its volumes; ``None`` while that fails."""
        if time.monotonic() < self._prepare_retry_at:
            return None
        try:
            lookups = await fetch_lookups(self._ctx.kube, self.pod)
            volume_ctx = VolumeContext(
                pod_volumes_dir=self.paths.volumes,
                pvc_root=self._ctx.layout.pvc_root,
                pod_ip=self.pod_ip or HOST_IP,
                host_ip=HOST_IP,
                node_allocatable=self._ctx.node_allocatable(self.node),
            )
            volumes = plan_volumes(self.pod, lookups, volume_ctx)
            materialise(volumes)
        except VolumeError as exc:
            self._prepare_retry_at = time.monotonic() + RETRY_SECONDS
            await self._warn("FailedMount", f"MountVolume.SetUp failed: {exc}")
            return None
        except (KubeError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self._prepare_retry_at = time.monotonic() + RETRY_SECONDS
            log.warning("pod %s: cannot prepare pod yet: %s", self.label, exc)
            return None
        for volume in volumes.values():
            for note in volume.notes:
                log.warning("pod %s: volume %s: %s", self.label, volume.name, note)
        self.paths.home.mkdir(parents=True, exist_ok=True)
        self.paths.run.mkdir(parents=True, exist_ok=True)
        return lookups, volumes

    def _pod_context(self) -> PodContext:
        return PodContext(
            pod_ip=self.pod_ip or HOST_IP,
            host_ip=HOST_IP,
            home_dir=str(self.paths.home),
            service_host=self._ctx.service_host,
            service_port=self._ctx.service_port,
            venv_bin=self._ctx.venv_bin,
            pod_bin=self._ctx.pod_bin,
            host_path=self._ctx.host_path,
            node_allocatable=self._ctx.node_allocatable(self.node),
            inherited=self._ctx.inherited,
            rewrite_wildcard=not self._host_network,
        )

    async def _start(self, container: Container) -> bool:
        if self._prepared is None:
            self._prepared = await self._prepare()
            if self._prepared is None:
                return False
        lookups, volumes = self._prepared
        view = container.view
        try:
            plan = plan_container(self.pod, container.spec, lookups, volumes, self._pod_context())
        except ContainerConfigError as exc:
            view.waiting_reason = "CreateContainerConfigError"
            view.waiting_message = str(exc)
            container.restart_at = time.monotonic() + RETRY_SECONDS
            self._prepared = None
            await self._warn("Failed", f"Error: {exc}", container)
            return False
        except StartError as exc:
            if container.has_run:
                view.restart_count += 1
            container.has_run = True
            await self._exited(
                container, Termination(128, "StartError", rfc3339(), message=str(exc))
            )
            return False
        spec_file = self.paths.spec(container.name)
        exit_file = self.paths.exit_record(container.name)
        exit_file.unlink(missing_ok=True)
        spec_file.write_text(
            json.dumps(
                {
                    "argv": plan.argv,
                    "env": plan.env,
                    "cwd": plan.cwd,
                    "mounts": [
                        {"source": m.source, "target": m.target, "readOnly": m.read_only}
                        for m in plan.mounts
                    ],
                    "exitFile": str(exit_file),
                }
            )
        )
        spec_file.chmod(0o600)
        await self._event(
            NORMAL,
            "Pulled",
            f'Container image "{plan.image}" recorded, not pulled: the process kubelet runs the '
            "container's command from the local environment",
            container,
        )
        process = start_container(
            spec_file, self.paths.log(container.name), self._marker(container), self._ctx.inherited
        )
        if container.has_run:
            view.restart_count += 1
        container.has_run = True
        container.process = process
        container.started_at = time.monotonic()
        view.running_since = rfc3339()
        view.container_id = process.container_id
        view.terminated = None
        view.waiting_message = None
        view.ready = container.probe is None
        if container.probe:
            container.probe.restart()
        self._save()
        log.info(
            "pod %s: started container %s (pid %d, address %s): %s",
            self.label,
            container.name,
            process.pid,
            self.pod_ip,
            _one_line(shlex.join(plan.argv)),
        )
        await self._event(NORMAL, "Created", f"Created container: {container.name}", container)
        await self._event(NORMAL, "Started", f"Started container {container.name}", container)
        return True

    async def _advance_init(self) -> None:
        self._prepared = None
        now = time.monotonic()
        for container in self._init_containers:
            if container.sidecar:
                if container.process is not None:
                    continue
                if now < container.restart_at or not await self._start(container):
                    return
                continue
            terminated = container.view.terminated
            if terminated and terminated.exit_code == 0:
                continue
            if container.process is None and now >= container.restart_at:
                await self._start(container)
            return
        self.init_done = True
        log.info("pod %s: initialized", self.label)
        self._save()

    async def _advance_main(self) -> None:
        self._prepared = None
        now = time.monotonic()
        sidecars = [c for c in self._init_containers if c.sidecar]
        for container in self._main_containers + sidecars:
            if container.process is not None or container.view.terminated:
                continue
            if now >= container.restart_at:
                await self._start(container)
        mains = self._main_containers
        if all(c.process is None and c.view.terminated for c in mains):
            self.finished = True
            log.info("pod %s: all containers have terminated", self.label)
            running_sidecars = [c for c in sidecars if c.process is not None]
            if running_sidecars:
                grace = int(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
                await self._stop_containers(running_sidecars, grace, remember=True)
            self._save()

    async def _probe(self) -> None:
        for container in self._containers:
            if container.process is None or container.probe is None:
                continue
            container.view.ready = await container.probe.poll(self.pod_ip or HOST_IP)

    async def _stop_containers(
        self, containers: list[Container], grace: float, *, remember: bool
    ) -> None:
        """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL. With ``remember`` the
        terminations are recorded in the containers' statuses; without it the pod record keeps
        the processes, for the next kubelet to find them gone."""
        running = [c for c in containers if c.process is not None and c.process.alive()]
        for container in running:
            assert container.process is not None
            log.info(
                "pod %s: stopping container %s (pid %d, grace %ss)",
                self.label,
                container.name,
                container.process.pid,
                grace,
            )
            await self._event(NORMAL, "Killing", f"Stopping container {container.name}", container)
            container.process.terminate()
        deadline = time.monotonic() + grace
        for _ in range(int(grace * 10) + 1):
            if time.monotonic() >= deadline or not any(
                c.process is not None and c.process.alive() for c in running
            ):
                break
            await asyncio.sleep(0.1)
        for container in containers:
            if container.process is not None:
                container.process.kill()
            kill_marked(self._marker(container))
            if remember and container.process is not None:
                termination = self._termination_of(container)
                container.process = None
                container.view.running_since = None
                container.view.ready = False
                container.view.terminated = termination

    async def stop_for_shutdown(self, grace_cap: float) -> None:
        """Stop the pod's processes as the node shuts down, leaving the pod to the next kubelet."""
        grace = min(
            float(self.pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)),
            grace_cap,
        )
        await self._stop_containers(self._containers, grace, remember=False)

    # -- deletion --------------------------------------------------------------------------------

    def _release(self) -> None:
        for container in self._containers:
            kill_marked(self._marker(container))
        self.paths.remove_all_but_logs()
        if self._host_network:
            log.info("pod %s: released pod directories", self.label)
            return
        self._ctx.addresses.release(self.uid)
        log.info("pod %s: released address %s and pod directories", self.label, self.pod_ip)

    def _grace_period(self) -> float:
        grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        return float(grace)

    async def _delete(self) -> None:
        grace = self._grace_period()
        log.info("pod %s: deletion requested (grace %ss)", self.label, grace)
        await self._stop_containers(self._containers, grace, remember=True)
        self._release()
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        for attempt in range(5):
            try:
                await self._ctx.kube.delete(path, body)
                break
            except KubeError as exc:
                if exc.status in (404, 409):
                    break
                log.warning("pod %s: delete failed (%s); retrying", self.label, exc)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("pod %s: delete failed (%s); retrying", self.label, exc)
            await asyncio.sleep(1 + attempt)
        log.info("pod %s: deleted", self.label)

    # -- reporting -------------------------------------------------------------------------------

    def _phase(self) -> str:
        return pod_phase(
            self._restart_policy,
            self.init_done,
            self.init_failed,
            [c.view for c in self._main_containers],
        )

    async def _report(self) -> None:
        view = PodView(
            phase=self._phase(),
            pod_ip=self.pod_ip,
            host_ip=HOST_IP,
            start_time=self.start_time,
            init_done=self.init_done,
            init_containers=[c.view for c in self._init_containers],
            containers=[c.view for c in self._main_containers],
        )
        status = pod_status(self.pod, view, rfc3339())
        if status == self._last_status:
            return
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status"
        try:
            updated = await self._ctx.kube.merge_patch(
                path, {"metadata": {"uid": self.uid}, "status": status}
            )
        except KubeError as exc:
            if exc.status in (404, 409, 422):
                log.info("pod %s: pod object is gone (%s)", self.label, exc)
                self.vanish()
                return
            raise
        previous_phase = (self._last_status or {}).get("phase")
        self._last_status = status
        self.update(updated)
        if previous_phase != status["phase"]:
            log.info("pod %s: phase %s", self.label, status["phase"])

    async def _event(
        self, kind: str, reason: str, message: str, container: Container | None = None
    ) -> None:
        await self._ctx.events.record(
            self.pod,
            kind,
            reason,
            message,
            container.name if container else None,
            bool(container and container.init),
        )

    async def _warn(self, reason: str, message: str, container: Container | None = None) -> None:
        key = (reason, container.name if container else None)
        previous = self._warned.get(key)
        now = time.monotonic()
        if previous and previous[0] == message and now - previous[1] < WARNING_REPEAT_SECONDS:
            return
        self._warned[key] = (message, now)
        log.warning("pod %s: %s: %s", self.label, reason, message)
        await self._event(WARNING, reason, message, container)
