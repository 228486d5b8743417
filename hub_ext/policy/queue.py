"""Per-team FIFO queues of spawns waiting for GPUs.

Order is strict within a team: an entry starts only when every earlier entry of its team has
started, so a small request never overtakes a blocked larger one. An entry that can no longer
start at all (its profile was removed, its user now holds their whole per-user cap, the
team's quota shrank below its size) is dropped with the decision that explains why, so that
it does not block the team forever. Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from hub_ext.policy.admission import Decision, Reason, SpawnRequest, decide
from hub_ext.policy.config import MLTeamsConfig, Quota, Team
from hub_ext.policy.ledger import Ledger, LedgerView, Usage, quota_with_grants
from hub_ext.policy.validation import plural

WAITING_REASONS = frozenset({Reason.TEAM_GPUS_IN_USE, Reason.QUEUE_WAITING})


@dataclass(frozen=True)
class QueuedSpawn:
    """A spawn waiting for GPUs: the request, its GPU count and its deadline."""

    request: SpawnRequest
    gpus: int
    enqueued_at: float
    deadline: float

    @property
    def server(self) -> str:
        return self.request.server

    @property
    def team(self) -> str:
        return self.request.team


@dataclass(frozen=True)
class QueuePosition:
    """Where a queued spawn stands in its team's line (1-based)."""

    position: int
    length: int
    entry: QueuedSpawn

    @property
    def message(self) -> str:
        """``queued: position 2 of 3, waiting for 1 GPU``."""
        return (
            f"queued: position {self.position} of {self.length}, "
            f"waiting for {plural(self.entry.gpus, 'GPU')}"
        )


@dataclass(frozen=True)
class QueueScan:
    """What a scan of the queues found: spawns that may start now, and spawns that never can."""

    admit: list[tuple[QueuedSpawn, Decision]] = field(default_factory=list)
    drop: list[tuple[QueuedSpawn, Decision]] = field(default_factory=list)


class SpawnQueue:
    """The waiting spawns of every team, each team in its own first-in, first-out line."""

    def __init__(self) -> None:
        self._lines: dict[str, dict[str, QueuedSpawn]] = {}
        self._teams: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._teams)

    def __contains__(self, server: object) -> bool:
        return server in self._teams

    def __iter__(self) -> Iterator[QueuedSpawn]:
        for line in self._lines.values():
            yield from line.values()

    def enqueue(self, config: MLTeamsConfig, decision: Decision, *, now: float) -> QueuedSpawn:
        """Put a spawn that ``decide`` answered with ``QUEUE`` at the end of its team's line.

        The deadline is ``now`` plus the profile's ``max_wait_seconds``. A server that is
        already queued keeps its place and its deadline.
        """
        if not decision.queued:
            raise ValueError(f"only a queued decision can be enqueued, not {decision.outcome}")
        request = decision.request
        existing = self.get(request.server)
        if existing is not None:
            return existing
        max_wait = config.profiles[request.profile].queue.max_wait_seconds
        entry = QueuedSpawn(request, decision.gpus, now, now + max_wait)
        self._lines.setdefault(request.team, {})[request.server] = entry
        self._teams[request.server] = request.team
        return entry

    def get(self, server: str) -> QueuedSpawn | None:
        team = self._teams.get(server)
        return None if team is None else self._lines[team][server]

    def entries(self, team: str) -> list[QueuedSpawn]:
        """A team's line, first in first."""
        return list(self._lines.get(team, {}).values())

    def ahead_of(self, team: str, server: str) -> int:
        """How many spawns of ``team`` wait ahead of ``server`` (all, if it is not queued)."""
        line = self._lines.get(team, {})
        if server not in line:
            return len(line)
        for index, queued in enumerate(line):
            if queued == server:
                return index
        return len(line)

    def position(self, server: str) -> QueuePosition | None:
        """Where ``server`` stands, for its progress page; ``None`` if it is not queued."""
        entry = self.get(server)
        if entry is None:
            return None
        line = self._lines[entry.team]
        return QueuePosition(self.ahead_of(entry.team, server) + 1, len(line), entry)

    def cancel(self, server: str) -> QueuedSpawn | None:
        """Take ``server`` out of its line (the user cancelled, or it started or was dropped)."""
        team = self._teams.pop(server, None)
        if team is None:
            return None
        line = self._lines[team]
        entry = line.pop(server)
        if not line:
            del self._lines[team]
        return entry

    def expire(self, now: float) -> list[QueuedSpawn]:
        """Remove and return the spawns whose deadline is at or before ``now``."""
        expired = [entry for entry in self if entry.deadline <= now]
        for entry in expired:
            self.cancel(entry.server)
        return expired

    def scan(self, config: MLTeamsConfig, ledger: LedgerView) -> QueueScan:
        """Which queued spawns may start now, strictly in order within each team.

        Walks each team's line from the front, admitting entries while they fit (counting the
        ones admitted earlier in the same scan), and stops at the first entry still waiting
        for GPUs. Entries that can never start are reported in ``drop`` and skipped. Nothing
        is changed; see ``take_admissible``.
        """
        result = QueueScan()
        for team, line in self._lines.items():
            tentative = _Tentative(ledger)
            for entry in line.values():
                decision = decide(config, tentative, entry.request)
                if decision.admitted:
                    result.admit.append((entry, decision))
                    tentative.add(team, entry.request.user, decision)
                elif decision.reason in WAITING_REASONS:
                    break
                else:
                    result.drop.append((entry, decision))
        return result

    def take_admissible(self, config: MLTeamsConfig, ledger: Ledger, *, now: float) -> QueueScan:
        """``scan``, then reserve for each admitted spawn and remove admitted and dropped ones.

        One synchronous step, so no other spawn can take the GPUs in between. The caller
        starts the admitted servers and fails the dropped ones with their decision's message.
        """
        result = self.scan(config, ledger)
        for entry, decision in result.admit:
            ledger.reserve(decision.reservation(now))
            self.cancel(entry.server)
        for entry, _ in result.drop:
            self.cancel(entry.server)
        return result


def expired_message(entry: QueuedSpawn) -> str:
    """What a user reads when their queued spawn gave up waiting."""
    minutes = max(1, round((entry.deadline - entry.enqueued_at) / 60))
    return (
        f"Waited {plural(minutes, 'minute')} for {plural(entry.gpus, 'GPU')} in team "
        f"{entry.team}, but none became free. Try again later, choose a smaller profile, "
        "or ask your team lead."
    )


def interrupted_message(team: str, *, queued: bool) -> str:
    """What a user reads when the hub restarted while their spawn waited in the queue
    (``queued``) or was being started: the spawn ended, nothing of it is left running."""
    where = f"waiting in team {team}'s queue" if queued else "starting"
    kept = " (its place in the queue was not kept)" if queued else ""
    return (
        f"Your server was {where} when the hub restarted, and it was not started{kept}. "
        "Start it again."
    )


class _Tentative:
    """A ledger view with the spawns admitted earlier in the same scan added on top."""

    def __init__(self, base: LedgerView) -> None:
        self._base = base
        self._teams: dict[str, Usage] = {}
        self._users: dict[tuple[str, str], Usage] = {}

    def add(self, team: str, user: str, decision: Decision) -> None:
        usage = Usage(decision.gpus, decision.cpu, decision.memory, 1)
        self._teams[team] = self._teams.get(team, Usage()) + usage
        self._users[(team, user)] = self._users.get((team, user), Usage()) + usage

    def effective_quota(self, team: Team, user: str | None = None) -> Quota:
        grants = self._base.team_grants(team.name)
        return quota_with_grants(
            self._base.base_quota(team),
            grants,
            user,
            lambda grantee: self.user_usage(team.name, grantee).gpus,
        )

    def base_quota(self, team: Team) -> Quota:
        return self._base.base_quota(team)

    def team_grants(self, team: str) -> Mapping[str, int]:
        return self._base.team_grants(team)

    def team_usage(self, team: str) -> Usage:
        return self._base.team_usage(team) + self._teams.get(team, Usage())

    def user_usage(self, team: str, user: str) -> Usage:
        return self._base.user_usage(team, user) + self._users.get((team, user), Usage())

    def server_share(self, server: str, team: str, user: str | None = None) -> Usage:
        return self._base.server_share(server, team, user)
