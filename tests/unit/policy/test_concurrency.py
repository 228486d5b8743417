"""Property-style checks: however spawns, failures, stops and queue scans interleave, the
GPUs admitted never exceed the team quota or a user's cap."""

from __future__ import annotations

import asyncio
import random

import pytest

from hub_ext.policy import (
    Ledger,
    MLTeamsConfig,
    QuotaOverride,
    SpawnQueue,
    decide,
    decide_and_reserve,
    load_config,
    server_key,
)
from tests.unit.policy.sample import pod, req, sample_raw

pytestmark = pytest.mark.unit


def four_gpu_team(queue_enabled: bool, per_user: int = 4) -> MLTeamsConfig:
    raw = sample_raw()
    raw["teams"]["nlp"]["quota"] = {"gpus": 4, "gpus_per_user": per_user}
    raw["profiles"]["queued-1gpu"]["queue"]["enabled"] = queue_enabled
    raw["profiles"]["queued-4gpu"]["queue"]["enabled"] = queue_enabled
    if per_user < 4:
        raw["teams"]["nlp"]["profiles"] = ["cpu", "queued-1gpu"]
    return load_config(raw)


def assert_within_quota(config: MLTeamsConfig, ledger: Ledger, users: list[str]) -> None:
    for team in config.teams.values():
        quota = ledger.effective_quota(team)
        assert ledger.team_usage(team.name).gpus <= quota.gpus
        for user in users:
            assert ledger.user_usage(team.name, user).gpus <= quota.gpus_per_user


@pytest.mark.parametrize("queue_enabled", [False, True])
@pytest.mark.parametrize("seed", range(10))
async def test_twenty_concurrent_spawns_admit_exactly_four(queue_enabled: bool, seed: int) -> None:
    config = four_gpu_team(queue_enabled)
    rng = random.Random(seed)
    ledger = Ledger(namespace_teams=config.namespace_teams)
    queue = SpawnQueue()
    users = [f"user{i}" for i in range(20)]
    outcomes: dict[str, str] = {}

    async def spawn(user: str) -> None:
        await asyncio.sleep(rng.random() / 1000)
        decision = decide_and_reserve(
            config, ledger, req(user, "nlp", "queued-1gpu"), now=0.0, queue=queue
        )
        outcomes[user] = decision.outcome.value
        if decision.queued:
            queue.enqueue(config, decision, now=0.0)
            return
        if not decision.admitted:
            return
        assert_within_quota(config, ledger, users)
        await asyncio.sleep(rng.random() / 1000)
        ledger.upsert_pod(pod("nlp", user, 1, phase="Pending", namespace="ml-nlp"))
        await asyncio.sleep(rng.random() / 1000)
        ledger.upsert_pod(pod("nlp", user, 1, phase="Running", namespace="ml-nlp"))
        assert_within_quota(config, ledger, users)

    await asyncio.gather(*(spawn(user) for user in users))
    admitted = [user for user, outcome in outcomes.items() if outcome == "admit"]
    waiting = [user for user, outcome in outcomes.items() if outcome != "admit"]
    assert len(admitted) == 4 and len(waiting) == 16
    assert ledger.team_usage("nlp").gpus == 4
    assert len(queue) == (16 if queue_enabled else 0)

    stopped = admitted[0]
    ledger.remove_pod("ml-nlp", f"jupyter-{stopped}-default")
    ledger.release(server_key(stopped))
    scan = queue.take_admissible(config, ledger, now=1.0)
    if queue_enabled:
        first = queue_order_first(waiting, outcomes)
        assert [entry.request.user for entry, _ in scan.admit] == [first]
    else:
        assert scan.admit == []
    assert ledger.team_usage("nlp").gpus == (4 if queue_enabled else 3)


async def test_without_reservations_the_same_race_over_admits() -> None:
    """The control for the test above: deciding, then awaiting, then creating over-admits."""
    config = four_gpu_team(queue_enabled=False)
    ledger = Ledger(namespace_teams=config.namespace_teams)
    admitted: list[str] = []

    async def careless_spawn(user: str) -> None:
        decision = decide(config, ledger, req(user, "nlp", "queued-1gpu"))
        await asyncio.sleep(0)
        if decision.admitted:
            admitted.append(user)
            ledger.upsert_pod(pod("nlp", user, 1, namespace="ml-nlp"))

    await asyncio.gather(*(careless_spawn(f"user{i}") for i in range(20)))
    assert len(admitted) == 20
    assert ledger.team_usage("nlp").gpus > ledger.effective_quota(config.teams["nlp"]).gpus


def queue_order_first(waiting: list[str], outcomes: dict[str, str]) -> str:
    """The first user that was queued (dicts keep insertion order, the order of decisions)."""
    return next(user for user in outcomes if user in waiting)


@pytest.mark.parametrize("seed", range(60))
def test_random_interleavings_never_over_admit(seed: int) -> None:
    rng = random.Random(seed)
    per_user = rng.choice([1, 2, 4])
    config = four_gpu_team(queue_enabled=rng.random() < 0.7, per_user=per_user)
    ledger = Ledger(namespace_teams=config.namespace_teams)
    queue = SpawnQueue()
    users = [f"u{i}" for i in range(6)]
    profiles = ["queued-1gpu", "queued-1gpu", "queued-4gpu", "cpu"]
    if per_user < 4:
        profiles.remove("queued-4gpu")
    creating: set[str] = set()
    running: set[str] = set()
    now = 0.0

    admitted = 0

    def start_admitted(servers: list[str]) -> None:
        nonlocal admitted
        admitted += len(servers)
        creating.update(servers)
        assert_within_quota(config, ledger, users)

    for _ in range(400):
        now += rng.random() * 30
        action = rng.random()
        if action < 0.35:
            user = rng.choice(users)
            server_name = rng.choice(["", "a", "b"])
            server = server_key(user, server_name)
            if server in creating or server in running or server in queue:
                continue
            request = req(user, "nlp", rng.choice(profiles), server_name=server_name)
            decision = decide_and_reserve(config, ledger, request, now=now, queue=queue)
            if decision.admitted:
                start_admitted([server])
            elif decision.queued:
                queue.enqueue(config, decision, now=now)
        elif action < 0.55 and creating:
            server = rng.choice(sorted(creating))
            creating.discard(server)
            held = ledger.reservation(server)
            assert held is not None
            if rng.random() < 0.2:
                ledger.release(server)
            else:
                user, _, server_name = server.partition("/")
                ledger.upsert_pod(
                    pod(
                        "nlp",
                        user,
                        held.gpus,
                        server_name=server_name,
                        namespace="ml-nlp",
                        phase="Running",
                    )
                )
                running.add(server)
        elif action < 0.8 and running:
            server = rng.choice(sorted(running))
            running.discard(server)
            user, _, server_name = server.partition("/")
            ledger.remove_pod("ml-nlp", f"jupyter-{user}-{server_name or 'default'}")
            ledger.release(server)
        elif action < 0.9:
            for entry in queue.expire(now):
                assert entry.deadline <= now
            assert all(entry.deadline > now for entry in queue)
        elif queue:
            queue.cancel(rng.choice([entry.server for entry in queue]))
        scan = queue.take_admissible(config, ledger, now=now)
        start_admitted([entry.server for entry, _ in scan.admit])
        assert_within_quota(config, ledger, users)
    assert admitted > 4


@pytest.mark.parametrize("seed", range(20))
def test_quota_shrinking_at_run_time_blocks_new_admissions(seed: int) -> None:
    rng = random.Random(seed)
    config = four_gpu_team(queue_enabled=True)
    ledger = Ledger.from_pods(
        [pod("nlp", f"held{i}", 1, namespace="ml-nlp") for i in range(rng.randint(0, 4))]
    )
    new_limit = rng.randint(0, 4)
    ledger.set_quota_override("nlp", QuotaOverride(gpus=new_limit))
    queue = SpawnQueue()
    before = ledger.team_usage("nlp").gpus
    for index in range(10):
        decision = decide_and_reserve(
            config, ledger, req(f"new{index}", "nlp", "queued-1gpu"), now=0.0, queue=queue
        )
        if decision.queued:
            queue.enqueue(config, decision, now=0.0)
    assert ledger.team_usage("nlp").gpus == max(before, new_limit)
