"""The hub process's shared team state: validated config, GPU ledger and spawn queue.

One ``TeamState`` serves every TeamKubeSpawner in the hub. The ledger is fed by the shared pod
reflector (no API call per spawn); the queue is pumped when a server stops, when a spawn fails,
and every ``MLTeams.queue_poll_seconds``, admitting queued spawns in order as GPUs free up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from hub_ext.policy import Decision, Ledger, MLTeamsConfig, QueuedSpawn, SpawnQueue, expired_message
from hub_ext.policy.notebook_pod import TrackingSettings
from hub_ext.spawner.overrides import OverridesReader
from hub_ext.spawner.reflector import reflector_for


@dataclass
class Waiter:
    """A queued spawn's future: set with ``None`` when admitted, or with a refusal message."""

    entry: QueuedSpawn
    future: asyncio.Future[str | None]


@dataclass
class TeamState:
    config: MLTeamsConfig
    ledger: Ledger
    queue: SpawnQueue = field(default_factory=SpawnQueue)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    poll_seconds: float = 2.0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mlteams"))
    waiters: dict[str, Waiter] = field(default_factory=dict)
    overrides: OverridesReader | None = None
    _pump_task: asyncio.Task | None = None
    _reflector_class: type | None = None

    @property
    def reflector_class(self) -> type:
        """The pod reflector class that feeds this state's ledger."""
        if self._reflector_class is None:
            self._reflector_class = reflector_for(self.ledger)
        return self._reflector_class

    @classmethod
    def create(
        cls,
        config: MLTeamsConfig,
        *,
        tracking: TrackingSettings | None = None,
        poll_seconds: float = 2.0,
        log: logging.Logger | None = None,
    ) -> TeamState:
        ledger = Ledger(namespace_teams=config.namespace_teams)
        return cls(
            config,
            ledger,
            tracking=tracking or TrackingSettings(),
            poll_seconds=poll_seconds,
            log=log or logging.getLogger("mlteams"),
        )

    async def refresh_overrides(self, force: bool = False) -> None:
        """Read the run-time quota overrides when due; a change may let queued spawns in."""
        if self.overrides is None:
            return
        if await self.overrides.refresh(self.ledger, self.log, force=force):
            self.log.info("MLTeams: quota overrides changed; checking the queue")
            self.pump()

    def wait_in_queue(self, decision: Decision) -> Waiter:
        """Queue a spawn; the returned waiter's future resolves when it may start or must end."""
        entry = self.queue.enqueue(self.config, decision, now=time.time())
        waiter = self.waiters.get(entry.server)
        if waiter is None or waiter.future.done():
            waiter = Waiter(entry, asyncio.get_running_loop().create_future())
            self.waiters[entry.server] = waiter
        self._ensure_pump()
        return waiter

    def leave_queue(self, server: str) -> None:
        """The spawn was cancelled (or failed) while queued."""
        self.queue.cancel(server)
        self.waiters.pop(server, None)

    def release(self, server: str) -> None:
        """A server stopped or its spawn failed: free what it reserved, then start who can."""
        self.ledger.release(server)
        self.pump()

    def pump(self) -> None:
        """Expire overdue queued spawns and admit those that fit now, in order."""
        now = time.time()
        for entry in self.queue.expire(now):
            self._resolve(entry.server, expired_message(entry))
        scan = self.queue.take_admissible(self.config, self.ledger, now=now)
        for entry, _ in scan.admit:
            self.log.info("queued spawn %s admitted", entry.server)
            self._resolve(entry.server, None)
        for entry, decision in scan.drop:
            self._resolve(entry.server, decision.message)

    def _resolve(self, server: str, outcome: str | None) -> None:
        waiter = self.waiters.pop(server, None)
        if waiter is not None and not waiter.future.done():
            waiter.future.set_result(outcome)
        elif outcome is None:
            self.ledger.release(server)

    def _ensure_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.ensure_future(self._pump_forever())

    async def _pump_forever(self) -> None:
        while len(self.queue):
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh_overrides()
                self.pump()
            except Exception:
                self.log.exception("queue pump failed")
