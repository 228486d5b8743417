"""Run-time quota overrides in the hub: read from the ``mlteams`` service's database, put into
the ledger that admission and the spawn form read.

The admin pages store an override in the service's database; every spawn and every spawn form
first refreshes the ledger's overrides when they are older than ``max_age`` seconds, so an
override (or its expiry) takes effect for the next spawn within seconds, and survives restarts
of the hub and the service (the database is the source). When the database cannot be read, the
overrides last read stay in force and the problem is logged once until it is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hub_ext.policy.ledger import Ledger
from hub_ext.policy.overrides import ActiveOverrides

MAX_AGE_SECONDS = 2.0


class OverridesReader:
    """Reads the overrides in effect from the database at ``url`` (any SQLAlchemy URL)."""

    def __init__(self, url: str, max_age: float = MAX_AGE_SECONDS) -> None:
        self.url = url
        self.max_age = max_age
        self._store: Any = None
        self._read_at = 0.0
        self._failing = False
        self._lock = asyncio.Lock()
        self.active: ActiveOverrides | None = None

    def _open(self) -> Any:
        if self._store is None:
            from hub_ext.service.store import Store

            self._store = Store(self.url)
        return self._store

    async def refresh(self, ledger: Ledger, log: logging.Logger, force: bool = False) -> bool:
        """Bring ``ledger``'s overrides up to date when they are older than ``max_age``;
        whether they changed."""
        async with self._lock:
            now = time.time()
            if not force and now - self._read_at < self.max_age:
                return False
            from hub_ext.service.store.overrides import apply_to, read_active

            try:
                active = await read_active(self._open(), now)
            except Exception as exc:
                if not self._failing:
                    log.warning(
                        "MLTeams: quota overrides not read from the mlteams service's database "
                        "(the ones read before stay in force): %s",
                        exc,
                    )
                self._failing = True
                self._read_at = now
                return False
            if self._failing:
                log.info("MLTeams: quota overrides are read again")
            self._failing = False
            self._read_at = now
            changed = self.active is None or (
                active.teams != self.active.teams or active.grants != self.active.grants
            )
            if changed:
                apply_to(ledger, active)
                self.active = active
            return changed

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
