"""A queue scan, step by step: admitted spawns leave the queue with a reservation, later
entries of the same scan see the memory the earlier ones took, and a queued server's own
(still running) pod is not counted against it."""

from __future__ import annotations

import pytest

from hub_ext.policy import (
    Ledger,
    Outcome,
    Reason,
    SpawnQueue,
    SpawnRequest,
    decide,
    decide_and_reserve,
    load_config,
)
from hub_ext.policy.config import MLTeamsConfig
from tests.unit.policy.sample import GIB, pod, req, sample_config, sample_raw

pytestmark = pytest.mark.unit


def _queue(config: MLTeamsConfig, ledger: Ledger, *requests: SpawnRequest) -> SpawnQueue:
    queue = SpawnQueue()
    for request in requests:
        decision = decide(config, ledger, request, queue=queue)
        assert decision.queued, decision.message
        queue.enqueue(config, decision, now=0.0)
    return queue


def test_admitted_spawns_leave_the_queue_with_their_reservation() -> None:
    config = sample_config()
    ledger = Ledger()
    ledger.upsert_pod(pod("nlp", "ada", 4, name="a", namespace="ml-nlp"))
    queue = _queue(
        config, ledger, req("bob", "nlp", "queued-1gpu"), req("cy", "nlp", "queued-1gpu")
    )
    ledger.remove_pod("ml-nlp", "a")
    result = queue.take_admissible(config, ledger, now=5.0)
    assert [entry.server for entry, _ in result.admit] == ["bob/", "cy/"]
    assert len(queue) == 0 and queue.entries("nlp") == []
    assert "bob/" not in queue and queue.position("cy/") is None
    reservation = ledger.reservation("bob/")
    assert reservation is not None and (reservation.gpus, reservation.created_at) == (1, 5.0)
    assert ledger.team_usage("nlp").gpus == 2


def test_later_entries_see_the_memory_earlier_ones_took() -> None:
    raw = sample_raw()
    raw["teams"]["nlp"]["quota"]["memory"] = "40Gi"
    config = load_config(raw)
    ledger = Ledger()
    ledger.upsert_pod(pod("nlp", "ada", 4, name="a", namespace="ml-nlp"))
    queue = _queue(
        config, ledger, req("bob", "nlp", "queued-1gpu"), req("cy", "nlp", "queued-1gpu")
    )
    ledger.remove_pod("ml-nlp", "a")
    result = queue.take_admissible(config, ledger, now=0.0)
    assert [entry.server for entry, _ in result.admit] == ["bob/"]
    ((dropped, decision),) = result.drop
    assert dropped.server == "cy/" and decision.reason is Reason.TEAM_MEMORY_IN_USE
    assert len(queue) == 0 and "cy/" not in queue, "a dropped spawn leaves the queue"
    assert ledger.team_usage("nlp").memory == 32 * GIB


def test_a_queued_servers_own_pod_is_not_counted_against_it() -> None:
    """A server queued for 4 GPUs whose earlier pod (1 GPU) is still there fits a 4-GPU
    quota once the others leave: its own pod is what it replaces."""
    config = sample_config()
    ledger = Ledger()
    ledger.upsert_pod(pod("nlp", "ada", 4, name="a", namespace="ml-nlp"))
    queue = _queue(config, ledger, req("bob", "nlp", "queued-4gpu"))
    ledger.upsert_pod(pod("nlp", "bob", 1, name="old", namespace="ml-nlp", deleting=True))
    ledger.remove_pod("ml-nlp", "a")
    result = queue.take_admissible(config, ledger, now=0.0)
    assert [(entry.server, decision.gpus) for entry, decision in result.admit] == [("bob/", 4)]
    assert ledger.team_usage("nlp").gpus == 4


def test_a_spawn_decided_and_reserved_waits_behind_the_queue() -> None:
    """With GPUs free but an earlier spawn of the team waiting, a new GPU spawn queues behind
    it and reserves nothing."""
    config = sample_config()
    ledger = Ledger()
    ledger.upsert_pod(pod("nlp", "ada", 1, name="a", namespace="ml-nlp"))
    queue = _queue(config, ledger, req("bob", "nlp", "queued-4gpu"))
    decision = decide_and_reserve(
        config, ledger, req("cy", "nlp", "queued-1gpu"), now=0.0, queue=queue
    )
    assert (decision.outcome, decision.reason) == (Outcome.QUEUE, Reason.QUEUE_WAITING)
    assert ledger.reservation("cy/") is None


@pytest.mark.parametrize(("wait", "minutes"), [(30, "1 minute"), (3600, "60 minutes")])
def test_a_queued_or_refused_spawn_carries_its_needs(wait: int, minutes: str) -> None:
    raw = sample_raw()
    raw["profiles"]["queued-1gpu"]["queue"]["max_wait_seconds"] = wait
    config = load_config(raw)
    ledger = Ledger()
    ledger.upsert_pod(pod("nlp", "ada", 4, name="a", namespace="ml-nlp"))
    queued = decide(config, ledger, req("bob", "nlp", "queued-1gpu"))
    assert queued.queued and queued.request.user == "bob"
    assert (queued.gpus, queued.cpu, queued.memory) == (1, 8000, 32 * GIB)
    assert queued.message.endswith(f"(waiting at most {minutes}).")
    ledger.upsert_pod(pod("vision", "ada", 2, name="v"))
    ledger.upsert_pod(pod("vision", "bob", 2, name="w"))
    ledger.upsert_pod(pod("vision", "cy", 2, name="x"))
    ledger.upsert_pod(pod("vision", "dee", 2, name="y"))
    refused = decide(config, ledger, req("eve", "vision", "pytorch-1gpu"))
    assert (refused.reason, refused.http_status) == (Reason.TEAM_GPUS_IN_USE, 429)
    assert refused.request.user == "eve"
    assert (refused.gpus, refused.cpu, refused.memory) == (1, 8000, 64 * GIB)
