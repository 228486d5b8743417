"""The GPU ledger: what each team and user holds, from pod summaries plus in-flight reservations.

The ledger is fed incrementally (a pod appeared, changed or went away; a spawn reserved or
released) and keeps per-team and per-user totals, so every query is a dictionary lookup whatever
the number of pods. Each server is counted once: its active pods and its reservation are
combined by taking the larger of the two, resource by resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from hub_ext.policy.config import Quota, QuotaOverride, Team
from hub_ext.policy.quantities import QuantityError, parse_cpu, parse_memory
from server_ext.contract import PROFILE_LABEL as PROFILE_LABEL
from server_ext.contract import SERVER_ANNOTATION as SERVER_ANNOTATION
from server_ext.contract import TEAM_LABEL as TEAM_LABEL
from server_ext.contract import USER_ANNOTATION as USER_ANNOTATION

GPU_RESOURCE = "nvidia.com/gpu"
HUB_USER_ANNOTATION = "hub.jupyter.org/username"
HUB_SERVER_ANNOTATION = "hub.jupyter.org/servername"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


def server_key(user: str, server_name: str = "") -> str:
    """The key that ties a user's server to its pod and its reservation."""
    return f"{user}/{server_name}"


@dataclass(frozen=True)
class Usage:
    """Resources held: GPUs, CPU in millicores, memory in bytes, and the number of servers."""

    gpus: int = 0
    cpu: int = 0
    memory: int = 0
    servers: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.gpus + other.gpus,
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.servers + other.servers,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.gpus - other.gpus,
            self.cpu - other.cpu,
            self.memory - other.memory,
            self.servers - other.servers,
        )

    def larger(self, other: Usage) -> Usage:
        """Resource by resource, the larger of the two."""
        return Usage(
            max(self.gpus, other.gpus),
            max(self.cpu, other.cpu),
            max(self.memory, other.memory),
            max(self.servers, other.servers),
        )

    @property
    def empty(self) -> bool:
        return self == Usage()


@dataclass(frozen=True)
class PodSummary:
    """What the ledger needs to know about one pod."""

    namespace: str
    name: str
    team: str | None = None
    user: str | None = None
    profile: str | None = None
    server: str | None = None
    gpus: int = 0
    cpu: int = 0
    memory: int = 0
    phase: str = "Pending"
    deleting: bool = False

    @property
    def active(self) -> bool:
        """Whether the pod holds resources: any phase but Succeeded or Failed.

        A pod that is being deleted still holds its GPUs until it is gone, as it does for the
        Kubernetes ResourceQuota, so it stays active.
        """
        return self.phase not in TERMINAL_PHASES

    @property
    def key(self) -> str:
        return self.server if self.server is not None else f"pod:{self.namespace}/{self.name}"

    @property
    def usage(self) -> Usage:
        return Usage(self.gpus, self.cpu, self.memory, 1) if self.active else Usage()

    @classmethod
    def from_manifest(cls, pod: Mapping[str, Any]) -> PodSummary:
        """Summarise a pod as the Kubernetes API returns it (a JSON dict, camelCase keys).

        Unreadable resource values count as zero rather than failing: the ledger must keep
        working whatever else runs in a team namespace.
        """
        metadata = _mapping(pod.get("metadata"))
        spec = _mapping(pod.get("spec"))
        status = _mapping(pod.get("status"))
        labels = _mapping(metadata.get("labels"))
        annotations = _mapping(metadata.get("annotations"))
        user = _text(annotations.get(USER_ANNOTATION)) or _text(
            annotations.get(HUB_USER_ANNOTATION)
        )
        server = _text(annotations.get(SERVER_ANNOTATION))
        if server is None and user is not None:
            server = server_key(user, _text(annotations.get(HUB_SERVER_ANNOTATION)) or "")
        gpus, cpu, memory = _pod_resources(spec)
        return cls(
            namespace=_text(metadata.get("namespace")) or "",
            name=_text(metadata.get("name")) or "",
            team=_text(labels.get(TEAM_LABEL)),
            user=user,
            profile=_text(labels.get(PROFILE_LABEL)),
            server=server,
            gpus=gpus,
            cpu=cpu,
            memory=memory,
            phase=_text(status.get("phase")) or "Pending",
            deleting=metadata.get("deletionTimestamp") is not None,
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _container_resources(container: Mapping[str, Any]) -> tuple[int, int, int]:
    resources = _mapping(container.get("resources"))
    limits = _mapping(resources.get("limits"))
    requests = _mapping(resources.get("requests"))

    def amount(name: str, parse: Any) -> int:
        value = limits.get(name, requests.get(name))
        if value is None:
            return 0
        try:
            return int(parse(value))
        except (QuantityError, ValueError, TypeError):
            return 0

    return (
        amount(GPU_RESOURCE, parse_memory),
        amount("cpu", parse_cpu),
        amount("memory", parse_memory),
    )


def _pod_resources(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    total = [0, 0, 0]
    for container in spec.get("containers") or ():
        for index, value in enumerate(_container_resources(_mapping(container))):
            total[index] += value
    for container in spec.get("initContainers") or ():
        for index, value in enumerate(_container_resources(_mapping(container))):
            total[index] = max(total[index], value)
    return total[0], total[1], total[2]


@dataclass(frozen=True)
class Reservation:
    """Resources set aside for a server the hub is about to create, keyed by ``server``."""

    server: str
    team: str
    user: str
    profile: str
    gpus: int
    cpu: int = 0
    memory: int = 0
    created_at: float = 0.0

    @property
    def usage(self) -> Usage:
        return Usage(self.gpus, self.cpu, self.memory, 1)


@dataclass(frozen=True)
class Holding:
    """One server's share of a team: for the admin page's "who holds the GPUs"."""

    server: str
    team: str
    user: str | None
    usage: Usage
    reserved_only: bool


_Account = tuple[str, str | None]


def quota_with_grants(
    base: Quota, grants: Mapping[str, int], user: str | None, held: Callable[[str], int]
) -> Quota:
    """``base`` (a team's quota with its override applied) widened by the team's GPU grants.

    ``grants`` gives each grantee's extra GPUs (all positive) and ``held(user)`` the GPUs a user
    holds in the team now. For ``user``, their own grant is theirs alone: it raises their cap
    and the team's total by that much. Another grantee's grant counts towards the total only for
    the GPUs that grantee holds beyond the normal per-user cap, so an unused grant cannot be
    taken by someone else, and a used one takes nothing from anyone else. Without a user, the
    team-wide figure: every grant added to the total, the per-user cap unchanged.

    Built with ``model_copy``, without re-validation, since base plus grants may pass the
    schema's maximum; the per-user cap never exceeds the total.
    """
    if not grants:
        return base
    if user is None:
        gpus = base.gpus + sum(grants.values())
        per_user = base.gpus_per_user
    else:
        own = grants.get(user, 0)
        cap = base.gpus_per_user
        beyond = sum(
            min(extra, max(0, held(grantee) - cap))
            for grantee, extra in grants.items()
            if grantee != user
        )
        gpus = base.gpus + own + beyond
        per_user = cap + own
    return base.model_copy(update={"gpus": gpus, "gpus_per_user": min(per_user, gpus)})


class LedgerView(Protocol):
    """The read-only queries the admission decision makes of a ledger."""

    def effective_quota(self, team: Team, user: str | None = None) -> Quota: ...

    def base_quota(self, team: Team) -> Quota: ...

    def team_grants(self, team: str) -> Mapping[str, int]: ...

    def team_usage(self, team: str) -> Usage: ...

    def user_usage(self, team: str, user: str) -> Usage: ...

    def server_share(self, server: str, team: str, user: str | None = None) -> Usage: ...


class Ledger:
    """Per-team and per-user usage, kept up to date from pod events and reservations.

    ``namespace_teams`` attributes pods without a team label to the team owning their
    namespace. ``overrides`` are run-time quota changes by team name; changing them is a plain
    data change (``set_quota_override``, ``set_quota_overrides``), as are the per-user GPU
    grants (``set_user_grants``).
    """

    def __init__(
        self,
        namespace_teams: Mapping[str, str] | None = None,
        overrides: Mapping[str, QuotaOverride] | None = None,
    ) -> None:
        self._namespace_teams = dict(namespace_teams or {})
        self._overrides: dict[str, QuotaOverride] = dict(overrides or {})
        self._grants: dict[str, dict[str, int]] = {}
        self._pods: dict[tuple[str, str], PodSummary] = {}
        self._server_pods: dict[str, dict[tuple[str, str], PodSummary]] = {}
        self._reservations: dict[str, Reservation] = {}
        self._shares: dict[str, dict[_Account, Usage]] = {}
        self._teams: dict[str, Usage] = {}
        self._users: dict[_Account, Usage] = {}
        self._team_servers: dict[str, set[str]] = {}

    @classmethod
    def from_pods(
        cls,
        pods: Iterable[PodSummary | Mapping[str, Any]],
        reservations: Iterable[Reservation] = (),
        namespace_teams: Mapping[str, str] | None = None,
        overrides: Mapping[str, QuotaOverride] | None = None,
    ) -> Ledger:
        """A ledger built from pod summaries (or raw pod manifests) and reservations."""
        ledger = cls(namespace_teams, overrides)
        for pod in pods:
            ledger.upsert_pod(pod)
        for reservation in reservations:
            ledger.reserve(reservation)
        return ledger

    # -- pods ---------------------------------------------------------------------------------

    def upsert_pod(self, pod: PodSummary | Mapping[str, Any]) -> None:
        """Record a pod that was added or changed."""
        summary = pod if isinstance(pod, PodSummary) else PodSummary.from_manifest(pod)
        if summary.team is None and summary.namespace in self._namespace_teams:
            summary = replace(summary, team=self._namespace_teams[summary.namespace])
        ident = (summary.namespace, summary.name)
        previous = self._pods.get(ident)
        if previous is not None and previous.key != summary.key:
            self.remove_pod(*ident)
        self._pods[ident] = summary
        self._server_pods.setdefault(summary.key, {})[ident] = summary
        self._recount(summary.key)

    def remove_pod(self, namespace: str, name: str) -> None:
        """Forget a pod that was deleted."""
        previous = self._pods.pop((namespace, name), None)
        if previous is None:
            return
        pods = self._server_pods.get(previous.key, {})
        pods.pop((namespace, name), None)
        if not pods:
            self._server_pods.pop(previous.key, None)
        self._recount(previous.key)

    def replace_pods(self, pods: Iterable[PodSummary | Mapping[str, Any]]) -> None:
        """Resynchronise with a full list of pods (after a reflector restart)."""
        for namespace, name in list(self._pods):
            self.remove_pod(namespace, name)
        for pod in pods:
            self.upsert_pod(pod)

    def pods(self, server: str) -> list[PodSummary]:
        return list(self._server_pods.get(server, {}).values())

    # -- reservations ---------------------------------------------------------------------------

    def reserve(self, reservation: Reservation) -> None:
        """Set resources aside for a server; replaces an earlier reservation for it."""
        self._reservations[reservation.server] = reservation
        self._recount(reservation.server)

    def release(self, server: str) -> Reservation | None:
        """Drop a server's reservation (its spawn failed, or it stopped)."""
        reservation = self._reservations.pop(server, None)
        if reservation is not None:
            self._recount(server)
        return reservation

    def reservation(self, server: str) -> Reservation | None:
        return self._reservations.get(server)

    def reservations(self) -> list[Reservation]:
        return list(self._reservations.values())

    # -- quotas -----------------------------------------------------------------------------------

    def set_quota_override(self, team: str, override: QuotaOverride | None) -> None:
        """Change a team's quota at run time; ``None`` returns it to the configured default."""
        if override is None:
            self._overrides.pop(team, None)
        else:
            self._overrides[team] = override

    def set_quota_overrides(self, overrides: Mapping[str, QuotaOverride]) -> None:
        """Replace every team's run-time override at once; teams left out get their default."""
        self._overrides = dict(overrides)

    def quota_override(self, team: str) -> QuotaOverride | None:
        return self._overrides.get(team)

    def set_user_grants(self, grants: Mapping[tuple[str, str], int]) -> None:
        """Replace every GPU grant at once: extra GPUs by (team, user); entries of zero or
        less are dropped."""
        by_team: dict[str, dict[str, int]] = {}
        for (team, user), extra in grants.items():
            if extra > 0:
                by_team.setdefault(team, {})[user] = extra
        self._grants = by_team

    def user_grant(self, team: str, user: str) -> int:
        """The extra GPUs granted to ``user`` in ``team`` (0 when none)."""
        return self._grants.get(team, {}).get(user, 0)

    def team_grants(self, team: str) -> Mapping[str, int]:
        """The grants of ``team``: extra GPUs by user, every one positive."""
        return dict(self._grants.get(team, {}))

    def base_quota(self, team: Team) -> Quota:
        """The team's configured quota updated by its run-time override, if any; no grants."""
        override = self._overrides.get(team.name)
        return team.quota if override is None else override.apply(team.quota)

    def effective_quota(self, team: Team, user: str | None = None) -> Quota:
        """The quota that applies to ``user`` in ``team``, or to the team as a whole.

        The base quota (``base_quota``) widened by the team's grants; see ``quota_with_grants``.
        """
        grants = self._grants.get(team.name)
        base = self.base_quota(team)
        if not grants:
            return base
        return quota_with_grants(
            base, grants, user, lambda grantee: self.user_usage(team.name, grantee).gpus
        )

    # -- queries ----------------------------------------------------------------------------------

    def team_usage(self, team: str) -> Usage:
        return self._teams.get(team, Usage())

    def user_usage(self, team: str, user: str) -> Usage:
        return self._users.get((team, user), Usage())

    def server_share(self, server: str, team: str, user: str | None = None) -> Usage:
        """What ``server`` counts for in ``team`` (and, given ``user``, in that user's total)."""
        shares = self._shares.get(server, {})
        if user is not None:
            return shares.get((team, user), Usage())
        total = Usage()
        for (share_team, _), usage in shares.items():
            if share_team == team:
                total = total + usage
        return total

    def holdings(self, team: str) -> list[Holding]:
        """Every server holding something in ``team``, largest GPU holders first."""
        out: list[Holding] = []
        for server in self._team_servers.get(team, ()):
            for (share_team, user), usage in self._shares.get(server, {}).items():
                if share_team != team:
                    continue
                active = any(pod.active for pod in self._server_pods.get(server, {}).values())
                out.append(Holding(server, team, user, usage, reserved_only=not active))
        out.sort(key=lambda holding: (-holding.usage.gpus, holding.server))
        return out

    # -- bookkeeping ------------------------------------------------------------------------------

    def _recount(self, server: str) -> None:
        for account, usage in self._shares.pop(server, {}).items():
            self._apply(server, account, usage, -1)
        shares = self._compute_shares(server)
        if shares:
            self._shares[server] = shares
            for account, usage in shares.items():
                self._apply(server, account, usage, 1)

    def _compute_shares(self, server: str) -> dict[_Account, Usage]:
        shares: dict[_Account, Usage] = {}
        for pod in self._server_pods.get(server, {}).values():
            if pod.team is None or not pod.active:
                continue
            account = (pod.team, pod.user)
            shares[account] = shares.get(account, Usage()) + pod.usage
        reservation = self._reservations.get(server)
        if reservation is not None:
            account = (reservation.team, reservation.user)
            shares[account] = shares.get(account, Usage()).larger(reservation.usage)
        return {account: replace(usage, servers=1) for account, usage in shares.items()}

    def _apply(self, server: str, account: _Account, usage: Usage, sign: int) -> None:
        team, user = account
        change = usage if sign > 0 else Usage() - usage
        self._teams[team] = self._teams.get(team, Usage()) + change
        if self._teams[team].empty:
            del self._teams[team]
        if user is not None:
            self._users[account] = self._users.get(account, Usage()) + change
            if self._users[account].empty:
                del self._users[account]
        servers = self._team_servers.setdefault(team, set())
        if sign > 0:
            servers.add(server)
        else:
            servers.discard(server)
            if not servers:
                del self._team_servers[team]


class MirroredPods(dict[str, Any]):
    """A dict of pod manifests keyed ``"namespace/name"`` that keeps a ``Ledger`` in step.

    Meant to stand in for a pod reflector's store: every write and delete of a manifest
    is applied to the ledger at once, so the ledger never has to list or rescan pods.
    Creating one replaces the ledger's pods with ``initial`` (a full relist).
    """

    def __init__(
        self, ledger: Ledger, initial: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        super().__init__(initial or {})
        self._ledger = ledger
        ledger.replace_pods(self.values())

    def __setitem__(self, key: str, manifest: Mapping[str, Any]) -> None:
        super().__setitem__(key, manifest)
        self._ledger.upsert_pod(manifest)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._forget(key)

    def pop(self, key: str, *default: Any) -> Any:
        present = key in self
        value = super().pop(key, *default)
        if present:
            self._forget(key)
        return value

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self._forget(key)
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def __ior__(self, other: Any) -> MirroredPods:  # type: ignore[override,misc]
        self.update(other)
        return self

    def _forget(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        self._ledger.remove_pod(namespace, name)
