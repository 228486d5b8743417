"""The per-team FIFO queue: order, position, cancel, expiry, and which spawns start next."""

from __future__ import annotations

import pytest

from hub_ext.policy import (
    Decision,
    Ledger,
    QueuedSpawn,
    Reason,
    SpawnQueue,
    decide,
    expired_message,
    load_config,
)
from tests.unit.policy.sample import ledger_with, pod, req, sample_config, sample_raw

pytestmark = pytest.mark.unit

CONFIG = sample_config()
FULL_NLP = (("nlp", "holder", 4),)


def queued(
    user: str, profile: str = "queued-1gpu", team: str = "nlp", **fields: object
) -> Decision:
    decision = decide(CONFIG, ledger_with(*FULL_NLP), req(user, team, profile, **fields))
    assert decision.queued, decision.message
    return decision


def fill(queue: SpawnQueue, *entries: tuple[str, str], start: float = 0.0) -> None:
    for offset, (user, profile) in enumerate(entries):
        queue.enqueue(CONFIG, queued(user, profile), now=start + offset)


def test_enqueue_keeps_order_and_deadline() -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"), ("bob", "queued-4gpu"), start=100.0)
    assert [entry.server for entry in queue.entries("nlp")] == ["ada/", "bob/"]
    first, second = queue.entries("nlp")
    assert (first.enqueued_at, first.deadline, first.gpus) == (100.0, 700.0, 1)
    assert (second.enqueued_at, second.deadline, second.gpus) == (101.0, 1301.0, 4)
    assert len(queue) == 2 and "ada/" in queue and "cy/" not in queue
    assert queue.entries("vision") == []


def test_enqueue_again_keeps_the_place() -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"), ("bob", "queued-1gpu"))
    again = queue.enqueue(CONFIG, queued("ada"), now=50.0)
    assert again.enqueued_at == 0.0
    assert [entry.server for entry in queue] == ["ada/", "bob/"]


def test_only_queue_decisions_can_be_enqueued() -> None:
    admitted = decide(CONFIG, Ledger(), req("ada", "nlp", "queued-1gpu"))
    with pytest.raises(ValueError, match="only a queued decision"):
        SpawnQueue().enqueue(CONFIG, admitted, now=0.0)


@pytest.mark.parametrize(
    ("server", "text"),
    [
        ("ada/", "queued: position 1 of 3, waiting for 1 GPU"),
        ("bob/", "queued: position 2 of 3, waiting for 4 GPUs"),
        ("cy/", "queued: position 3 of 3, waiting for 1 GPU"),
    ],
)
def test_position_message(server: str, text: str) -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"), ("bob", "queued-4gpu"), ("cy", "queued-1gpu"))
    position = queue.position(server)
    assert position is not None and position.message == text


def test_cancel_moves_later_entries_up() -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"), ("bob", "queued-4gpu"), ("cy", "queued-1gpu"))
    cancelled = queue.cancel("bob/")
    assert isinstance(cancelled, QueuedSpawn) and cancelled.gpus == 4
    assert queue.cancel("bob/") is None
    assert queue.position("bob/") is None
    position = queue.position("cy/")
    assert position is not None and position.message == (
        "queued: position 2 of 2, waiting for 1 GPU"
    )
    queue.cancel("ada/")
    queue.cancel("cy/")
    assert len(queue) == 0 and list(queue) == []


@pytest.mark.parametrize(
    ("now", "expired", "left"),
    [
        (0.0, [], ["ada/", "bob/", "cy/"]),
        (599.9, [], ["ada/", "bob/", "cy/"]),
        (600.0, ["ada/"], ["bob/", "cy/"]),
        (602.0, ["ada/", "cy/"], ["bob/"]),
        (1201.0, ["ada/", "bob/", "cy/"], []),
    ],
)
def test_expiry_uses_the_time_passed_in(now: float, expired: list[str], left: list[str]) -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"), ("bob", "queued-4gpu"), ("cy", "queued-1gpu"))
    assert sorted(entry.server for entry in queue.expire(now)) == expired
    assert [entry.server for entry in queue] == left


def test_expired_message() -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"))
    [entry] = queue.expire(10_000.0)
    assert expired_message(entry) == (
        "Waited 10 minutes for 1 GPU in team nlp, but none became free. Try again later, "
        "choose a smaller profile, or ask your team lead."
    )


@pytest.mark.parametrize(
    ("held", "line", "starts"),
    [
        (4, [("ada", "queued-1gpu"), ("bob", "queued-1gpu")], []),
        (3, [("ada", "queued-1gpu"), ("bob", "queued-1gpu")], ["ada/"]),
        (2, [("ada", "queued-1gpu"), ("bob", "queued-1gpu")], ["ada/", "bob/"]),
        (
            0,
            [("ada", "queued-1gpu"), ("bob", "queued-1gpu"), ("cy", "queued-4gpu")],
            ["ada/", "bob/"],
        ),
        (3, [("ada", "queued-4gpu"), ("bob", "queued-1gpu")], []),
        (0, [("ada", "queued-4gpu"), ("bob", "queued-1gpu")], ["ada/"]),
        (1, [("ada", "queued-1gpu"), ("bob", "queued-4gpu"), ("cy", "queued-1gpu")], ["ada/"]),
        (
            0,
            [
                ("ada", "queued-1gpu"),
                ("bob", "queued-1gpu"),
                ("cy", "queued-1gpu"),
                ("dee", "queued-1gpu"),
                ("eve", "queued-1gpu"),
            ],
            ["ada/", "bob/", "cy/", "dee/"],
        ),
    ],
)
def test_scan_admits_strictly_in_order(
    held: int, line: list[tuple[str, str]], starts: list[str]
) -> None:
    queue = SpawnQueue()
    fill(queue, *line)
    ledger = ledger_with(("nlp", "holder", held)) if held else Ledger()
    assert [entry.server for entry, _ in queue.scan(CONFIG, ledger).admit] == starts
    assert len(queue) == len(line), "a scan changes nothing"


def test_one_users_entries_respect_the_per_user_cap_within_a_scan() -> None:
    raw = sample_raw()
    raw["teams"]["nlp"]["quota"]["gpus_per_user"] = 1
    raw["teams"]["nlp"]["profiles"] = ["cpu", "queued-1gpu"]
    config = load_config(raw)
    full = ledger_with(
        ("nlp", "holder", 1), ("nlp", "holder2", 1), ("nlp", "h3", 1), ("nlp", "h4", 1)
    )
    queue = SpawnQueue()
    for server_name in ("a", "b"):
        decision = decide(config, full, req("ada", "nlp", "queued-1gpu", server_name=server_name))
        queue.enqueue(config, decision, now=0.0)
    decision = decide(config, full, req("bob", "nlp", "queued-1gpu"))
    queue.enqueue(config, decision, now=0.0)
    scan = queue.scan(config, Ledger())
    assert [entry.server for entry, _ in scan.admit] == ["ada/a", "bob/"]
    assert [entry.server for entry, _ in scan.drop] == ["ada/b"]
    assert scan.drop[0][1].reason is Reason.USER_GPUS_IN_USE


def test_an_entry_that_can_never_start_is_dropped_not_blocking() -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-4gpu"), ("bob", "queued-1gpu"))
    raw = sample_raw()
    raw["teams"]["nlp"]["profiles"] = ["cpu", "queued-1gpu"]
    changed = load_config(raw)
    scan = queue.scan(changed, ledger_with(("nlp", "holder", 3)))
    assert [(entry.server, d.reason) for entry, d in scan.drop] == [
        ("ada/", Reason.PROFILE_NOT_ALLOWED)
    ]
    assert [entry.server for entry, _ in scan.admit] == ["bob/"]


def test_teams_are_independent() -> None:
    raw = sample_raw()
    raw["profiles"]["pytorch-1gpu"]["queue"] = {"enabled": True}
    config = load_config(raw)
    queue = SpawnQueue()
    queue.enqueue(config, queued("ada", "queued-4gpu"), now=0.0)
    vision_full = ledger_with(*(("vision", f"v{i}", 2) for i in range(4)))
    vision_wait = decide(config, vision_full, req("bob", "vision", "pytorch-1gpu"))
    assert vision_wait.queued
    queue.enqueue(config, vision_wait, now=1.0)
    ledger = ledger_with(("nlp", "holder", 1), *(("vision", f"v{i}", 2) for i in range(3)))
    assert [entry.server for entry, _ in queue.scan(config, ledger).admit] == ["bob/"]
    assert queue.ahead_of("nlp", "bob/") == 1
    assert queue.ahead_of("vision", "bob/") == 0


def test_take_admissible_reserves_and_removes() -> None:
    queue = SpawnQueue()
    fill(queue, ("ada", "queued-1gpu"), ("bob", "queued-1gpu"), ("cy", "queued-4gpu"))
    ledger = ledger_with(("nlp", "holder", 2))
    scan = queue.take_admissible(CONFIG, ledger, now=42.0)
    assert [entry.server for entry, _ in scan.admit] == ["ada/", "bob/"]
    assert [entry.server for entry in queue] == ["cy/"]
    assert ledger.team_usage("nlp").gpus == 4
    held = ledger.reservation("ada/")
    assert held is not None and held.created_at == 42.0
    assert queue.take_admissible(CONFIG, ledger, now=43.0).admit == []
    position = queue.position("cy/")
    assert position is not None and position.message == (
        "queued: position 1 of 1, waiting for 4 GPUs"
    )


def test_stopping_a_server_starts_the_first_queued_one() -> None:
    ledger = Ledger.from_pods([pod("nlp", f"u{i}", 1, namespace="ml-nlp") for i in range(4)])
    queue = SpawnQueue()
    for user in ("ada", "bob"):
        decision = decide(CONFIG, ledger, req(user, "nlp", "queued-1gpu"), queue=queue)
        assert decision.queued
        queue.enqueue(CONFIG, decision, now=0.0)
    ledger.remove_pod("ml-nlp", "jupyter-u0-default")
    scan = queue.take_admissible(CONFIG, ledger, now=5.0)
    assert [entry.server for entry, _ in scan.admit] == ["ada/"]
    position = queue.position("bob/")
    assert position is not None and position.position == 1
