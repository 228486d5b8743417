"""A pod's container, translated into the process that runs it: argv, environment, working
directory and bind mounts. Pure: given the pod, the fetched objects and the volume paths.

The image is only recorded. A container's ``command`` (or, without one, its ``args``) is the
program; an image's entrypoint is never consulted, so a container with neither cannot start.
Every literal wildcard address ``0.0.0.0`` in the environment and the arguments is rewritten to
the pod's own loopback address (see the package docstring).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import declared_env, expand
from .references import Lookups
from .volumes import VolumeSource

CONTAINER_MARKER = "MLTEAMS_KUBELET_CONTAINER"
INHERITED_VARIABLES = ("MLTEAMS_RIG",)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_WILDCARD = re.compile(r"(?<![0-9.])0\.0\.0\.0(?![0-9.]|/[0-9])")
_HOME_MOUNT = re.compile(r"^(/home/[^/]+|/root)/?$")


class StartError(Exception):
    """The container's process cannot be started (reported as terminated, reason StartError)."""


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class PodContext:
    """What the node knows about the pod and itself beyond the pod object."""

    pod_ip: str
    host_ip: str
    home_dir: str
    service_host: str
    service_port: str
    venv_bin: str
    host_path: str = DEFAULT_PATH
    node_allocatable: dict[str, str] = field(default_factory=dict)
    inherited: dict[str, str] = field(default_factory=dict)
    rewrite_wildcard: bool = True
    pod_bin: str = ""

    def rewrite(self, text: str) -> str:
        return rewrite_wildcard(text, self.pod_ip) if self.rewrite_wildcard else text


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    mounts: list[Mount]


def rewrite_wildcard(text: str, pod_ip: str) -> str:
    """Replace the IPv4 wildcard ``0.0.0.0`` (not a ``0.0.0.0/n`` network) with ``pod_ip``."""
    return _WILDCARD.sub(pod_ip, text)


def container_marker(pod_uid: str, container_name: str) -> str:
    return f"{pod_uid}/{container_name}"


def home_for(container: dict[str, Any], default: str) -> str:
    """HOME: a volume mounted at ``/home/<user>`` or ``/root`` if there is one, else ``default``."""
    for mount in container.get("volumeMounts") or []:
        match = _HOME_MOUNT.match(mount.get("mountPath", ""))
        if match:
            return match.group(1)
    return default


def plan_mounts(
    container: dict[str, Any], volumes: dict[str, VolumeSource], env: dict[str, str]
) -> list[Mount]:
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise StartError(f"volumeMount {mount['name']!r} names no volume of the pod")
        sub_path = mount.get("subPath") or expand(mount.get("subPathExpr", ""), env)
        source = volume.path
        if sub_path:
            parts = Path(sub_path).parts
            if Path(sub_path).is_absolute() or ".." in parts:
                raise StartError(f"subPath {sub_path!r} must be a relative path inside the volume")
            source = source / sub_path
        mounts.append(
            Mount(
                source=str(source),
                target=mount["mountPath"],
                read_only=bool(mount.get("readOnly")) or volume.read_only,
            )
        )
    return sorted(mounts, key=lambda m: len(Path(m.target).parts))


def plan_container(
    pod: dict[str, Any],
    container: dict[str, Any],
    lookups: Lookups,
    volumes: dict[str, VolumeSource],
    ctx: PodContext,
) -> ContainerPlan:
    """The process for ``container``; raises ``ContainerConfigError`` while a referenced object is
    missing and ``StartError`` when the container can never start as written."""
    meta = pod["metadata"]
    home = home_for(container, ctx.home_dir)
    base = {
        "PATH": ctx.host_path,
        "HOSTNAME": meta["name"],
        "HOME": home,
        "KUBERNETES_SERVICE_HOST": ctx.service_host,
        "KUBERNETES_SERVICE_PORT": ctx.service_port,
        "KUBERNETES_SERVICE_PORT_HTTPS": ctx.service_port,
    }
    env = declared_env(
        pod,
        container,
        lookups,
        pod_ip=ctx.pod_ip,
        host_ip=ctx.host_ip,
        node_allocatable=ctx.node_allocatable,
        base=base,
    )
    first = [d for d in (ctx.pod_bin, ctx.venv_bin) if d]
    path_entries = [p for p in env.get("PATH", "").split(":") if p and p not in first]
    env["PATH"] = ":".join([*first, *path_entries])
    env = {name: ctx.rewrite(value) for name, value in env.items()}
    env.update(ctx.inherited)
    env[CONTAINER_MARKER] = container_marker(meta["uid"], container["name"])

    command = [expand(str(a), env) for a in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    argv = [ctx.rewrite(a) for a in command + args]
    if not argv:
        raise StartError(
            f"container {container['name']!r} has neither command nor args; the process kubelet "
            "runs the container's command from the local environment and ignores the image "
            "entrypoint"
        )
    return ContainerPlan(
        name=container["name"],
        image=container.get("image", ""),
        argv=argv,
        env=env,
        cwd=container.get("workingDir") or env["HOME"],
        mounts=plan_mounts(container, volumes, env),
    )


def inherited_environment(environ: dict[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in INHERITED_VARIABLES if name in environ}
