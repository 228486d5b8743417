"""Run-time quota overrides as the hub and the service read them from the service's database.

Both sides compute the same effective quotas: the spawner for admission and the spawn form, the
service for its pages and for the teams' ResourceQuotas. Rows become plain
``hub_ext.policy.overrides`` records here; the decisions stay in the policy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from hub_ext.policy.config import MLTeamsConfig, Quota
from hub_ext.policy.ledger import Ledger
from hub_ext.policy.overrides import ActiveOverrides, OverrideRecord, active_overrides
from hub_ext.service.store import OverrideRow, Store


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def record_of(row: OverrideRow) -> OverrideRecord:
    """A stored override as the policy reads it."""
    return OverrideRecord(
        id=row.id,
        team=row.team,
        user=row.user,
        gpus=row.gpus,
        gpus_per_user=row.gpus_per_user,
        cpu=row.cpu,
        memory=row.memory,
        extra_gpus=row.extra_gpus,
        created_at=row.created_at.timestamp(),
        expires_at=_epoch(row.expires_at),
        revoked=row.revoked_at is not None,
    )


def active_from_rows(rows: Iterable[OverrideRow], now: float) -> ActiveOverrides:
    return active_overrides([record_of(row) for row in rows], now)


async def read_active(store: Store, now: float | None = None) -> ActiveOverrides:
    """The overrides in effect at ``now`` (default: the present), read in a thread."""
    at = time.time() if now is None else now
    rows = await asyncio.to_thread(
        store.overrides, active_at=datetime.fromtimestamp(at, timezone.utc)
    )
    return active_from_rows(rows, at)


def apply_to(ledger: Ledger, active: ActiveOverrides) -> None:
    """Put the overrides in effect into ``ledger``: its admission and figures follow them."""
    ledger.set_quota_overrides(active.teams)
    ledger.set_user_grants(active.grants)


def team_quotas(config: MLTeamsConfig, active: ActiveOverrides) -> dict[str, Quota]:
    """Each team's quota in effect as a whole (what its ResourceQuota should say)."""
    ledger = Ledger(namespace_teams=config.namespace_teams)
    apply_to(ledger, active)
    return {name: ledger.effective_quota(team) for name, team in config.teams.items()}


CHANGE_KEYS = ("gpus", "gpus_per_user", "cpu", "memory", "extra_gpus", "expires_at")


def override_change(row: OverrideRow) -> dict[str, Any]:
    """What an override changes, for the audit: its quota keys that are set, and its expiry."""
    view = override_view(row)
    return {key: view[key] for key in CHANGE_KEYS if view[key] is not None}


def override_view(row: OverrideRow) -> dict[str, Any]:
    """An override as the pages and the API show it."""
    return {
        "id": row.id,
        "team": row.team,
        "user": row.user,
        "gpus": row.gpus,
        "gpus_per_user": row.gpus_per_user,
        "cpu": row.cpu,
        "memory": row.memory,
        "extra_gpus": row.extra_gpus,
        "reason": row.reason,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "expires_at": None if row.expires_at is None else row.expires_at.isoformat(),
        "revoked_at": None if row.revoked_at is None else row.revoked_at.isoformat(),
        "revoked_by": row.revoked_by,
        "request_id": row.request_id,
    }
