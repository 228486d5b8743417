"""A queue scan, step by step: admitted spawns leave the queue with a reservation, later
entries of the same scan see the memory the earlier ones took, and a queued server's own
(still running) pod is not counted against it."""

from __future__ import annotations

import pytest

from hub_ext.policy import Ledger, Reason, SpawnQueue, SpawnRequest, decide, load_config
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
