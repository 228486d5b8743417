"""The team configuration (z2jh ``hub.config.MLTeams``) as frozen dataclasses.

``config_loader.load_config`` builds them from the mapping an admin writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

ROOT = "MLTeams"
MAX_GPUS = 4096
MAX_QUEUE_WAIT_SECONDS = 7 * 24 * 3600
DEFAULT_QUEUE_WAIT_SECONDS = 1800
RESERVED_ENV_PREFIXES = ("JUPYTERHUB_", "MLTEAMS_")
TOLERATION_OPERATORS = ("Equal", "Exists")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_T = TypeVar("_T")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen(data: Mapping[str, _T]) -> Mapping[str, _T]:
    """A read-only copy of ``data``."""
    return MappingProxyType(dict(data))


@dataclass(frozen=True)
class Quota:
    """A team's limits. ``cpu`` is in millicores and ``memory`` in bytes; ``None`` is unlimited."""

    gpus: int
    gpus_per_user: int
    cpu: int | None = None
    memory: int | None = None


@dataclass(frozen=True)
class QuotaOverride:
    """A run-time change to a team's quota (from the admin page); ``None`` keeps the default."""

    gpus: int | None = None
    gpus_per_user: int | None = None
    cpu: int | None = None
    memory: int | None = None

    def apply(self, quota: Quota) -> Quota:
        """The effective quota: ``quota`` with this override's fields replacing its own."""
        gpus = quota.gpus if self.gpus is None else self.gpus
        per_user = quota.gpus_per_user if self.gpus_per_user is None else self.gpus_per_user
        return Quota(
            gpus=gpus,
            gpus_per_user=min(per_user, gpus),
            cpu=quota.cpu if self.cpu is None else self.cpu,
            memory=quota.memory if self.memory is None else self.memory,
        )


@dataclass(frozen=True)
class QueuePolicy:
    """Opt-in queueing: a spawn over GPU quota waits up to ``max_wait_seconds``, not fails."""

    enabled: bool = False
    max_wait_seconds: int = DEFAULT_QUEUE_WAIT_SECONDS


@dataclass(frozen=True)
class Toleration:
    """A Kubernetes pod toleration."""

    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def to_k8s(self) -> dict[str, Any]:
        """The toleration as it appears in a pod spec (camelCase keys, unset keys left out)."""
        out: dict[str, Any] = {"operator": self.operator}
        if self.key is not None:
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


@dataclass(frozen=True)
class Profile:
    """A server profile: image and resources. ``cpu`` is in millicores, ``memory`` in bytes.

    ``gpus`` is the count used when the user does not choose one; a profile with
    ``gpus_min < gpus_max`` lets the user pick a count in that range.
    """

    name: str
    image: str
    display_name: str
    description: str = ""
    gpus: int = 0
    gpus_min: int = 0
    gpus_max: int = 0
    cpu: int | None = None
    memory: int | None = None
    node_selector: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    tolerations: tuple[Toleration, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    queue: QueuePolicy = field(default_factory=QueuePolicy)

    @property
    def gpu_choice(self) -> bool:
        """Whether the user may choose the GPU count."""
        return self.gpus_min != self.gpus_max


@dataclass(frozen=True)
class Dataset:
    """A dataset in the catalog; ``volume`` is kept as written (a CSI or PVC volume source)."""

    name: str
    uri: str
    format: str | None = None
    description: str = ""
    volume: Mapping[str, Any] | None = None
    credentials_secret: str | None = None


@dataclass(frozen=True)
class Promotion:
    """Promotion settings; ``gates`` is kept as written for the promotion service to interpret."""

    gates: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    high_stakes: bool = False


@dataclass(frozen=True)
class Team:
    """A team: who belongs (IdP groups), where its servers run and what it may use.

    The first entry of ``profiles`` is the team's default profile.
    """

    name: str
    display_name: str
    namespace: str
    quota: Quota
    profiles: tuple[str, ...]
    groups: tuple[str, ...] = ()
    lead_groups: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    promotion: Promotion = field(default_factory=Promotion)
    contact: str | None = None

    @property
    def default_profile(self) -> str:
        return self.profiles[0]


@dataclass(frozen=True)
class MLTeamsConfig:
    """The whole validated configuration."""

    teams: Mapping[str, Team]
    profiles: Mapping[str, Profile]
    datasets: Mapping[str, Dataset] = field(default_factory=lambda: _EMPTY)

    @property
    def namespace_teams(self) -> Mapping[str, str]:
        """Namespace -> team name."""
        return {team.namespace: team.name for team in self.teams.values()}
