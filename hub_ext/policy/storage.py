"""Homes and team folders in the pod, and the storage quota's refusals, computed purely.

A user's home is KubeSpawner's own (z2jh ``singleuser.storage``, type ``dynamic``): a claim named
by ``pvc_name_template`` created on first spawn in the namespace the server runs in. Servers run in
their team's namespace, so a user in two teams has one home per team, each counted against its
own team's storage quota. A team may size its homes differently (``home``) and have a shared
folder (``shared_folder``), mounted in every member's server; its claim lives in the team's
namespace, which only the team's servers use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub_ext.policy.config import Team
from hub_ext.policy.quantities import QuantityError, describe_memory, format_memory, parse_memory
from server_ext import contract

TEAM_FOLDER_VOLUME = "mlteams-team-folder"
STORAGE_RESOURCES = ("requests.storage", "persistentvolumeclaims")
_STORAGE_CLASS_RESOURCE = re.compile(
    r"\.storageclass\.storage\.k8s\.io/(requests\.storage|persistentvolumeclaims)$"
)
_EXCEEDED = re.compile(
    r"exceeded quota: (?P<quota>[^,\s\"]+)"
    r"(?:, requested: (?P<requested>.*?), used: (?P<used>.*?), limited: (?P<limited>[^\s\"]*))?"
)


@dataclass(frozen=True)
class QuotaRefusal:
    """A ResourceQuota's refusal as the API server words it: per resource, what was asked,
    what was in use and the limit."""

    quota: str
    requested: Mapping[str, str]
    used: Mapping[str, str]
    limited: Mapping[str, str]

    @property
    def storage(self) -> bool:
        """Whether the refused resources are volume claims or their storage."""
        return any(_is_storage(name) for name in self.limited)


def _is_storage(resource: str) -> bool:
    return resource in STORAGE_RESOURCES or bool(_STORAGE_CLASS_RESOURCE.search(resource))


def _resources(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            out[name] = value
    return out


def quota_refusal(body: Any) -> QuotaRefusal | None:
    """The refusal in an API error body (a JSON Status or its message), if it is a quota's."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return None
    message = body
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        message = parsed["message"]
    found = _EXCEEDED.search(message)
    if found is None:
        return None
    return QuotaRefusal(
        quota=found["quota"],
        requested=_resources(found["requested"] or ""),
        used=_resources(found["used"] or ""),
        limited=_resources(found["limited"] or ""),
    )


def _amount(value: str | None) -> str:
    if value is None:
        return "?"
    try:
        return describe_memory(parse_memory(value))
    except QuantityError:
        return value


def _whom_to_ask(team: Team) -> str:
    lead = f"your team lead ({team.contact})" if team.contact else "your team lead"
    return f"Ask {lead} or a platform admin"


def storage_refusal_message(team: Team, refusal: QuotaRefusal) -> str:
    """What a user is told when the team's storage quota refuses their home's claim."""
    where = f"namespace {team.namespace}"
    limited = refusal.limited
    storage_key = next((k for k in limited if k.endswith("requests.storage")), None)
    if storage_key is not None:
        needed = _amount(refusal.requested.get(storage_key))
        used = _amount(refusal.used.get(storage_key))
        room = _amount(limited[storage_key])
        told = (
            f"Team {team.display_name} has no storage left for your home: it needs {needed}, "
            f"and the team's volumes already hold {used} of its {room} storage quota ({where})."
        )
        key = "storage"
    else:
        claims_key = next(iter(limited))
        told = (
            f"Team {team.display_name} has no room for another volume: its quota allows "
            f"{limited[claims_key]} volume claims in {where} and "
            f"{refusal.used.get(claims_key, limited[claims_key])} exist."
        )
        key = "claims"
    return (
        f"{told} Your server was not started and nothing was changed. {_whom_to_ask(team)} to "
        f"delete homes that are no longer needed or to raise the team's quota "
        f"(quota.{key} of team {team.name})."
    )


def home_settings(team: Team) -> dict[str, Any]:
    """The KubeSpawner settings a team's ``home`` overrides; empty for the global defaults."""
    out: dict[str, Any] = {}
    if team.home.capacity is not None:
        out["storage_capacity"] = format_memory(team.home.capacity)
    if team.home.storage_class is not None:
        out["storage_class"] = team.home.storage_class
    return out


# volume sources whose data outlives the pod; emptyDir and the projected kinds do not
_PERSISTENT_SOURCES = frozenset(
    {"persistentVolumeClaim", "hostPath", "nfs", "csi", "cephfs", "glusterfs", "iscsi"}
)
_EPHEMERAL_SOURCES = frozenset(
    {"emptyDir", "ephemeral", "configMap", "secret", "downwardAPI", "projected"}
)


def home_is_persistent(
    volumes: Sequence[Mapping[str, Any]], volume_mounts: Sequence[Mapping[str, Any]], home: str
) -> bool | None:
    """Whether files in ``home`` outlive the server: decided by the volume mounted at ``home`` or
    the nearest folder above it. No such mount: the container's own disk, lost at a restart. A
    volume kind this function does not know: ``None``."""
    target = home.rstrip("/") or "/"
    best: Mapping[str, Any] | None = None
    best_len = -1
    for mount in volume_mounts:
        path = str(mount.get("mountPath", "")).rstrip("/") or "/"
        covers = target == path or target.startswith(path if path == "/" else path + "/")
        if covers and len(path) > best_len:
            best, best_len = mount, len(path)
    if best is None:
        return False
    volume = next((v for v in volumes if v.get("name") == best.get("name")), None)
    if volume is None:
        return None
    kinds = set(volume) - {"name"}
    if kinds & _PERSISTENT_SOURCES:
        return True
    if kinds & _EPHEMERAL_SOURCES:
        return False
    return None


def home_environment(
    volumes: Sequence[Mapping[str, Any]], volume_mounts: Sequence[Mapping[str, Any]], *, home: str
) -> dict[str, str]:
    """``MLTEAMS_HOME_PERSISTENT`` for the server, so that it can tell users whether what they
    install in their home survives a restart; nothing when that cannot be told."""
    persistent = home_is_persistent(volumes, volume_mounts, home)
    if persistent is None:
        return {}
    return {contract.HOME_PERSISTENT: "true" if persistent else "false"}


def team_folder_volumes(team: Team) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod volume and mount of ``team``'s shared folder (none when it has no folder)."""
    folder = team.shared_folder
    if folder is None:
        return [], []
    volume = {"name": TEAM_FOLDER_VOLUME, "persistentVolumeClaim": {"claimName": folder.claim_name}}
    mount = {"name": TEAM_FOLDER_VOLUME, "mountPath": folder.mount_path}
    return [volume], [mount]


def missing_team_folder_message(team: Team) -> str:
    """Why a spawn is refused while the team folder's claim does not exist."""
    assert team.shared_folder is not None
    claim = team.shared_folder.claim_name
    return (
        f"Team {team.display_name}'s shared folder is not ready: its volume claim {claim} does "
        f"not exist in namespace {team.namespace}, so servers of the team cannot start. Ask a "
        "platform admin to create it (or to let the hub create it with MLTeams provision)."
    )


def storage_note(team: Team, *, capacity: str | None, other_teams: Sequence[Team] = ()) -> str:
    """The spawn form's line about the user's home (and the team folder) in ``team``."""
    written = format_memory(team.home.capacity) if team.home.capacity else capacity
    volume = f"a volume of {_amount(written)}" if written else "a volume"
    parts = [f"Your home: {volume} in namespace {team.namespace}, kept when the server stops."]
    if other_teams:
        names = ", ".join(t.display_name for t in other_teams)
        if len(other_teams) == 1:
            parts.append(f"Your home in team {names} is separate.")
        else:
            parts.append(f"Your homes in teams {names} are separate.")
    if team.shared_folder is not None:
        parts.append(
            f"Team folder: {team.shared_folder.mount_path}, shared with every member of "
            f"{team.display_name}."
        )
    return " ".join(parts)
