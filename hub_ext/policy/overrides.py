"""Run-time quota changes as stored records: which are in force now, and who may make them.

An override record either changes a whole team's quota (``user`` is ``None``: ``gpus``,
``gpus_per_user``, ``cpu``, ``memory``) or grants one user of a team ``extra_gpus`` for a
while. Records are kept, not deleted: one stops counting when it expires or is revoked.
``active_overrides`` turns the stored records into what the ledger takes
(``Ledger.set_quota_overrides`` and ``Ledger.set_user_grants``); ``check_team_override`` and
``check_grant`` say whether an admin or a team lead may make a change. Times are epoch seconds,
always passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub_ext.policy.config import Quota, QuotaOverride, Team
from hub_ext.policy.quantities import describe_cpu, describe_memory
from hub_ext.policy.validation import plural

MAX_GRANT_GPUS = 64
"""The most extra GPUs one grant may give."""

TEAM_FIELDS = ("gpus", "gpus_per_user", "cpu", "memory")
"""The fields of a whole-team record, as named in ``QuotaOverride``."""


@dataclass(frozen=True)
class OverrideRecord:
    """One stored override: a whole-team quota change (``user`` is ``None``) or a grant of
    ``extra_gpus`` to ``user``. ``cpu`` is in millicores and ``memory`` in bytes; ``None``
    keeps the configured value. ``expires_at`` ``None`` never expires."""

    id: str
    team: str
    user: str | None
    gpus: int | None
    gpus_per_user: int | None
    cpu: int | None
    memory: int | None
    extra_gpus: int | None
    created_at: float
    expires_at: float | None
    revoked: bool


@dataclass(frozen=True)
class ActiveOverrides:
    """What the stored records say now: each team's override (the newest active whole-team
    record), the extra GPUs granted by (team, user), and when the next active record expires
    (``None`` when none does), so that the caller knows when to look again."""

    teams: Mapping[str, QuotaOverride] = field(default_factory=dict)
    grants: Mapping[tuple[str, str], int] = field(default_factory=dict)
    next_expiry: float | None = None


class OverrideRefused(Exception):
    """A quota change that may not be made, with the HTTP status and a message for the user."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message


def _count(value: Any) -> int | None:
    """A whole number as stored, or ``None`` when it is not one (bools are not numbers)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> float | None:
    """A time as stored, or ``None`` when it is not a number (bools and NaN are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _active(record: OverrideRecord, now: float) -> bool:
    """Not revoked and not expired; an expiry that cannot be read counts as expired."""
    if record.revoked:
        return False
    if record.expires_at is None:
        return True
    expires = _time(record.expires_at)
    return expires is not None and expires > now


def _team_override(record: OverrideRecord) -> QuotaOverride:
    """The record as a ``QuotaOverride``, leaving out any value that is not valid.

    Values are in Python units (millicores, bytes). A per-user cap above the record's own GPU
    total is lowered to that total, as ``QuotaOverride.apply`` would.
    """
    written = {name: getattr(record, name) for name in TEAM_FIELDS}
    written = {name: value for name, value in written.items() if value is not None}
    try:
        return QuotaOverride.model_validate(written)
    except (ValueError, TypeError):
        pass
    kept: dict[str, Any] = {}
    for name, value in written.items():
        try:
            QuotaOverride.model_validate({name: value})
        except (ValueError, TypeError):
            continue
        kept[name] = value
    if "gpus" in kept and "gpus_per_user" in kept:
        kept["gpus_per_user"] = min(kept["gpus_per_user"], kept["gpus"])
    try:
        return QuotaOverride.model_validate(kept)
    except (ValueError, TypeError):
        return QuotaOverride()


def active_overrides(records: Iterable[OverrideRecord], now: float) -> ActiveOverrides:
    """The overrides in force at ``now``.

    A record is active when it is not revoked and ``expires_at`` is ``None`` or after ``now``
    (a record expiring exactly at ``now`` has expired). Per team, the newest active whole-team
    record wins (by ``created_at``; the later one listed on a tie), even one that sets nothing,
    which returns the team to its configured quota; its ``extra_gpus`` means nothing. Grants
    add up per (team, user); a user's record sets only ``extra_gpus``. Stored values that are
    not valid are ignored rather than raised: a grant that is not 1 to ``MAX_GRANT_GPUS`` GPUs,
    a team field out of range, a record without a team or an expiry that cannot be read (the
    record counts as expired).
    """
    newest: dict[str, tuple[float, OverrideRecord]] = {}
    grants: dict[tuple[str, str], int] = {}
    expiries: list[float] = []
    for record in records:
        team = _name(record.team)
        if team is None or not _active(record, now):
            continue
        user = record.user
        if user is None:
            created = _time(record.created_at)
            created = -math.inf if created is None else created
            if team not in newest or created >= newest[team][0]:
                newest[team] = (created, record)
        else:
            extra = _count(record.extra_gpus)
            if _name(user) is None or extra is None or not 1 <= extra <= MAX_GRANT_GPUS:
                continue
            grants[(team, user)] = grants.get((team, user), 0) + extra
        expires = _time(record.expires_at)
        if expires is not None and math.isfinite(expires):
            expiries.append(expires)
    teams = {team: _team_override(record) for team, (_, record) in newest.items()}
    return ActiveOverrides(teams, grants, min(expiries) if expiries else None)


_FIELD_NAMES = {
    "gpus": "GPUs",
    "gpus_per_user": "GPUs per user",
    "cpu": "CPU",
    "memory": "memory",
    "storage": "storage",
    "claims": "volume claims",
}


def _describe(name: str, value: int | None) -> str:
    if value is None:
        return "unlimited"
    if name == "cpu":
        return describe_cpu(value)
    if name in ("memory", "storage"):
        return describe_memory(value)
    return str(value)


def check_team_override(
    *, team: Team, current: Quota, change: QuotaOverride, by_admin: bool
) -> None:
    """Refuse a whole-team quota change that its author may not make, or that is not coherent.

    ``current`` is the team's quota now (configured, with its override applied). An admin may
    set any valid change. A team lead may only lower or keep ``gpus_per_user`` and set nothing
    else (403). A change whose ``gpus_per_user`` exceeds the team's GPUs after the change is
    refused (400).
    """
    if not by_admin:
        for name, label in _FIELD_NAMES.items():
            if name == "gpus_per_user" or getattr(change, name) is None:
                continue
            now = _describe(name, getattr(current, name))
            raise OverrideRefused(
                403,
                f"Leads may change only team {team.name}'s GPUs per user, not its {label} "
                f"(now {now}); ask a platform admin.",
            )
        per_user = change.gpus_per_user
        if per_user is not None and per_user > current.gpus_per_user:
            raise OverrideRefused(
                403,
                f"Leads may lower team {team.name}'s GPUs per user (now "
                f"{current.gpus_per_user}), not raise it; ask a platform admin.",
            )
    gpus = current.gpus if change.gpus is None else change.gpus
    if change.gpus_per_user is not None and change.gpus_per_user > gpus:
        raise OverrideRefused(
            400,
            f"Team {team.name}'s GPUs per user ({change.gpus_per_user}) cannot exceed its "
            f"GPUs ({gpus}).",
        )


def check_grant(*, team: Team, user: str, extra_gpus: int, by_admin: bool, lead_limit: int) -> None:
    """Refuse a grant of ``extra_gpus`` to ``user`` in ``team`` that may not be made.

    A grant is 1 to ``MAX_GRANT_GPUS`` GPUs (400 otherwise); a team lead may grant at most
    ``lead_limit`` (403 above it); an admin any.
    """
    count = _count(extra_gpus)
    if count is None or not 1 <= count <= MAX_GRANT_GPUS:
        raise OverrideRefused(
            400,
            f"A grant to {user} in team {team.name} must be 1 to {MAX_GRANT_GPUS} extra GPUs, "
            f"got {extra_gpus!r}.",
        )
    if not by_admin and count > lead_limit:
        raise OverrideRefused(
            403,
            f"Leads may grant {user} at most {plural(lead_limit, 'extra GPU')} in team "
            f"{team.name}; granting more than {plural(lead_limit, 'GPU')} needs a platform "
            "admin.",
        )
