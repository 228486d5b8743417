"""What a team and profile mean for the pod: KubeSpawner settings, computed purely.

``pod_settings`` returns the values to set on the spawner before KubeSpawner builds the pod:
the team's namespace, the profile's image, resources (GPUs as ``nvidia.com/gpu`` limits, CPU and
memory as guarantees and limits), node selector, tolerations, environment, and the labels and
annotations the GPU ledger reads back from the pod.
"""

from __future__ import annotations

import string
from typing import Any

from hub_ext.policy import (
    GPU_RESOURCE,
    PROFILE_LABEL,
    SERVER_ANNOTATION,
    TEAM_LABEL,
    USER_ANNOTATION,
    MLTeamsConfig,
    SpawnOptions,
    server_key,
)
from server_ext import contract as env

USER_LABEL = "mlteams.io/user"
_LABEL_CHARS = frozenset(string.ascii_letters + string.digits + "._-")


def _label_value(text: str) -> str:
    """A label-safe rendering of a hub user name (labels allow 63 of [A-Za-z0-9._-])."""
    safe = "".join(ch if ch in _LABEL_CHARS else "-" for ch in text)[:63]
    return safe.strip("._-") or "user"


def literal(value: Any) -> Any:
    """``value`` with braces doubled in every string, so that KubeSpawner's expansion of
    ``{username}``-style templates in the environment leaves it as it is (JSON included)."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, dict):
        return {key: literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [literal(item) for item in value]
    return value


def pod_settings(
    config: MLTeamsConfig, options: SpawnOptions, *, user: str, server_name: str = ""
) -> dict[str, Any]:
    """KubeSpawner attribute values for a server of ``user`` with these validated options."""
    team = config.teams[options.team]
    profile = options.profile
    gpus = profile.gpus if options.gpus is None else options.gpus
    settings: dict[str, Any] = {
        "namespace": team.namespace,
        "image": profile.image,
        "node_selector": dict(profile.node_selector),
        "tolerations": [t.to_k8s() for t in profile.tolerations],
        "extra_resource_limits": {GPU_RESOURCE: str(gpus)} if gpus else {},
        "extra_resource_guarantees": {GPU_RESOURCE: str(gpus)} if gpus else {},
        "extra_labels": {
            TEAM_LABEL: team.name,
            PROFILE_LABEL: profile.name,
            USER_LABEL: _label_value(user),
        },
        "extra_annotations": {
            USER_ANNOTATION: user,
            SERVER_ANNOTATION: server_key(user, server_name),
        },
        "environment": {
            **dict(profile.env),
            env.TEAM: team.name,
            env.PROFILE: profile.name,
            env.IMAGE: profile.image,
            env.GPUS: str(gpus),
        },
    }
    if profile.cpu is not None:
        settings["cpu_guarantee"] = settings["cpu_limit"] = profile.cpu / 1000
    if profile.memory is not None:
        settings["mem_guarantee"] = settings["mem_limit"] = profile.memory
    return settings
