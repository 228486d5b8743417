"""The profiles offered to a user: filtered by team, with availability and disabled reasons."""

from __future__ import annotations

import pytest

from hub_ext.policy import Ledger, ProfileChoice, SpawnQueue, decide, profile_choices
from tests.unit.policy.sample import GIB, ledger_with, pod, req, sample_config

pytestmark = pytest.mark.unit

CONFIG = sample_config()


def by_name(choices: list[ProfileChoice]) -> dict[str, ProfileChoice]:
    return {choice.profile.name: choice for choice in choices}


@pytest.mark.parametrize(
    ("team", "names"),
    [
        ("vision", ["cpu", "pytorch-1gpu", "pytorch-2gpu", "flex"]),
        ("nlp", ["cpu", "queued-1gpu", "queued-4gpu"]),
        ("research", ["cpu"]),
    ],
)
def test_only_the_teams_profiles_are_offered_in_order(team: str, names: list[str]) -> None:
    choices = profile_choices(CONFIG, Ledger(), team, "ada")
    assert [choice.profile.name for choice in choices] == names
    assert [choice.is_default for choice in choices] == [True] + [False] * (len(names) - 1)


@pytest.mark.parametrize(
    ("holders", "enabled", "text"),
    [
        (
            (),
            {"cpu": True, "pytorch-1gpu": True, "pytorch-2gpu": True, "flex": True},
            "team vision: 8 of 8 GPUs free; you hold 0 of your 2",
        ),
        (
            (("vision", "ada", 1), ("vision", "bob", 2), ("vision", "cy", 2)),
            {"cpu": True, "pytorch-1gpu": True, "pytorch-2gpu": False, "flex": True},
            "team vision: 3 of 8 GPUs free; you hold 1 of your 2",
        ),
        (
            (("vision", "ada", 2),),
            {"cpu": True, "pytorch-1gpu": False, "pytorch-2gpu": False, "flex": False},
            "team vision: 6 of 8 GPUs free; you hold 2 of your 2",
        ),
        (
            (("vision", "bob", 2),) * 3 + (("vision", "cy", 1),),
            {"cpu": True, "pytorch-1gpu": True, "pytorch-2gpu": False, "flex": True},
            "team vision: 1 of 8 GPUs free; you hold 0 of your 2",
        ),
        (
            (("vision", "bob", 2),) * 4,
            {"cpu": True, "pytorch-1gpu": False, "pytorch-2gpu": False, "flex": False},
            "team vision: 0 of 8 GPUs free; you hold 0 of your 2",
        ),
    ],
)
def test_availability_and_disabled_profiles(
    holders: tuple[tuple[str, str, int], ...], enabled: dict[str, bool], text: str
) -> None:
    choices = by_name(profile_choices(CONFIG, ledger_with(*holders), "vision", "ada"))
    assert {name: choice.enabled for name, choice in choices.items()} == enabled
    for name, choice in choices.items():
        if name == "cpu":
            assert choice.availability == "team vision: no GPU"
        else:
            assert choice.availability == text
        if choice.enabled:
            assert choice.disabled_reason is None
        else:
            assert choice.disabled_reason == choice.decision.message
            assert "Stop" in choice.disabled_reason


def test_disabled_reason_matches_the_spawn_decision() -> None:
    ledger = ledger_with(("vision", "ada", 1), ("vision", "bob", 2), ("vision", "cy", 2))
    choice = by_name(profile_choices(CONFIG, ledger, "vision", "ada"))["pytorch-2gpu"]
    assert choice.disabled_reason == decide(CONFIG, ledger, req(profile="pytorch-2gpu")).message
    assert choice.disabled_reason == (
        "Team vision has 3 of 8 GPUs free (you hold 1 of your 2; you asked for 2). Stop one of "
        "your servers or ask your team lead (#ml-vision)."
    )


def test_queueable_profile_over_quota_stays_enabled_with_a_note() -> None:
    ledger = ledger_with(("nlp", "bob", 4))
    choices = by_name(profile_choices(CONFIG, ledger, "nlp", "ada"))
    queued = choices["queued-1gpu"]
    assert queued.enabled and queued.will_queue
    assert queued.note is not None and "queued" in queued.note
    assert queued.availability == "team nlp: 0 of 4 GPUs free; you hold 0 of your 4"
    assert choices["cpu"].enabled and not choices["cpu"].will_queue
    assert choices["cpu"].note is None


def test_queueable_profile_queues_behind_earlier_requests() -> None:
    ledger = ledger_with(("nlp", "bob", 2))
    queue = SpawnQueue()
    queue.enqueue(
        CONFIG,
        decide(
            CONFIG,
            ledger_with(("nlp", "bob", 4)),
            req(user="cy", team="nlp", profile="queued-4gpu"),
        ),
        now=0,
    )
    choices = by_name(profile_choices(CONFIG, ledger, "nlp", "ada", queue=queue))
    assert choices["queued-1gpu"].will_queue
    assert not by_name(profile_choices(CONFIG, ledger, "nlp", "ada"))["queued-1gpu"].will_queue


@pytest.mark.parametrize(
    ("used_cpu", "used_memory", "enabled", "text"),
    [
        (0, 0, True, "team research: no GPU; 4 CPUs of 4 CPUs and 16 GiB of 16 GiB memory free"),
        (
            2000,
            8 * GIB,
            True,
            "team research: no GPU; 2 CPUs of 4 CPUs and 8 GiB of 16 GiB memory free",
        ),
        (3000, 0, False, "team research: no GPU; 1 CPU of 4 CPUs and 16 GiB of 16 GiB memory free"),
        (
            0,
            12 * GIB,
            False,
            "team research: no GPU; 4 CPUs of 4 CPUs and 4 GiB of 16 GiB memory free",
        ),
        (
            5000,
            20 * GIB,
            False,
            "team research: no GPU; 0 CPUs of 4 CPUs and 0 bytes of 16 GiB memory free",
        ),
    ],
)
def test_cpu_only_profile_subject_to_cpu_and_memory_quota(
    used_cpu: int, used_memory: int, enabled: bool, text: str
) -> None:
    ledger = Ledger.from_pods([pod("research", "bob", 0, cpu=used_cpu, memory=used_memory)])
    [choice] = profile_choices(CONFIG, ledger, "research", "ada")
    assert choice.availability == text
    assert choice.enabled is enabled


def test_cpu_only_profile_ignores_gpu_shortage() -> None:
    ledger = ledger_with(
        ("vision", "ada", 2), ("vision", "bob", 2), ("vision", "cy", 2), ("vision", "dee", 2)
    )
    assert by_name(profile_choices(CONFIG, ledger, "vision", "ada"))["cpu"].enabled


def test_a_servers_own_pod_does_not_count_against_deciding_it_again() -> None:
    on_big = Ledger.from_pods([pod("vision", "ada", 2, server_name="big")])
    again = by_name(profile_choices(CONFIG, on_big, "vision", "ada", server_name="big"))
    assert again["pytorch-2gpu"].enabled
    another = by_name(profile_choices(CONFIG, on_big, "vision", "ada"))
    assert not another["pytorch-2gpu"].enabled
    on_default = Ledger.from_pods([pod("vision", "ada", 2)])
    assert by_name(profile_choices(CONFIG, on_default, "vision", "ada"))["pytorch-2gpu"].enabled
