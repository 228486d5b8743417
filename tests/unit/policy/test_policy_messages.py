"""What users and admins read: the exact wording of refusals and notices whose numbers and
units come from the policy (GPU choices, quantities, lead refusals, a queued spawn that ended)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub_ext.policy import Ledger, Reason, decide
from hub_ext.policy.config import Quota, QuotaOverride
from hub_ext.policy.overrides import OverrideRefused, check_team_override
from hub_ext.policy.quantities import (
    QuantityError,
    describe_cpu,
    describe_memory,
    format_memory,
    parse_cpu,
    parse_memory,
    parse_quantity,
)
from hub_ext.policy.queue import interrupted_message
from tests.unit.policy.sample import GIB, pod, req, sample_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("profile", "gpus", "message"),
    [
        (
            "pytorch-1gpu",
            2,
            "Profile pytorch-1gpu has a fixed GPU count of 1; 2 GPUs cannot be chosen.",
        ),
        (
            "pytorch-2gpu",
            1,
            "Profile pytorch-2gpu has a fixed GPU count of 2; 1 GPU cannot be chosen.",
        ),
        ("flex", 5, "Profile flex offers 1 to 4 GPUs; 5 cannot be chosen."),
    ],
)
def test_a_gpu_count_the_profile_does_not_offer(profile: str, gpus: int, message: str) -> None:
    decision = decide(sample_config(), Ledger(), req(profile=profile, gpus=gpus))
    assert decision.rejected and decision.http_status == 400
    assert decision.message == message


@pytest.mark.parametrize(
    ("amount", "text"), [(0, "0"), (1, "1"), (1024, "1Ki"), (1000, "1k"), (3 * GIB, "3Gi")]
)
def test_memory_quantities_are_the_shortest_exact_form(amount: int, text: str) -> None:
    assert format_memory(amount) == text


@pytest.mark.parametrize(
    ("millicores", "text"),
    [(20000, "20 CPUs"), (1000, "1 CPU"), (100000, "100 CPUs"), (250, "0.25 CPUs"), (0, "0 CPUs")],
)
def test_cpu_for_people_without_exponents(millicores: int, text: str) -> None:
    assert describe_cpu(millicores) == text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            QuotaOverride(storage=GIB),
            "Leads may change only team vision's GPUs per user, not its storage (now 500 GiB); "
            "ask a platform admin.",
        ),
        (
            QuotaOverride(memory=GIB),
            "Leads may change only team vision's GPUs per user, not its memory (now 64 GiB); "
            "ask a platform admin.",
        ),
        (
            QuotaOverride(claims=3),
            "Leads may change only team vision's GPUs per user, not its volume claims "
            "(now unlimited); ask a platform admin.",
        ),
    ],
)
def test_a_lead_is_told_the_current_value_in_its_units(change: QuotaOverride, message: str) -> None:
    vision = sample_config().teams["vision"]
    current = Quota(gpus=8, memory=64 * GIB, storage=500 * GIB)
    with pytest.raises(OverrideRefused) as info:
        check_team_override(team=vision, current=current, change=change, by_admin=False)
    assert (info.value.http_status, info.value.message) == (403, message)


def test_a_spawn_interrupted_by_a_hub_restart() -> None:
    assert interrupted_message("vision", queued=True) == (
        "Your server was waiting in team vision's queue when the hub restarted, and it was not "
        "started (its place in the queue was not kept). Start it again."
    )
    assert interrupted_message("vision", queued=False) == (
        "Your server was starting when the hub restarted, and it was not started. Start it again."
    )


@pytest.mark.parametrize(
    ("amount", "text"),
    [(1536, "1.5 KiB"), (2048, "2 KiB"), (1023, "1023 bytes"), (3 * 2**20, "3 MiB")],
)
def test_memory_for_people(amount: int, text: str) -> None:
    assert describe_memory(amount) == text


def test_a_refusal_carries_what_the_profile_would_have_held() -> None:
    """A refused spawn reports the request and the GPUs, CPU and memory it asked for, which
    the spawn page shows beside the reason."""
    config = sample_config()
    ledger = Ledger()
    ledger.upsert_pod(pod("research", "bob", 0, cpu=3000, memory=GIB))
    cpu = decide(config, ledger, req(user="ada", team="research", profile="cpu"))
    assert (cpu.reason, cpu.request.user) == (Reason.TEAM_CPU_IN_USE, "ada")
    assert (cpu.gpus, cpu.cpu, cpu.memory) == (0, 2000, 8 * GIB)
    ledger.upsert_pod(pod("vision", "ada", 2))
    gpu = decide(config, ledger, req(user="ada", profile="pytorch-1gpu", server_name="x"))
    assert (gpu.reason, gpu.request.server) == (Reason.USER_GPUS_IN_USE, "ada/x")
    assert (gpu.gpus, gpu.cpu, gpu.memory) == (1, 8000, 64 * GIB)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", 'expected a quantity such as "2", "500m" or "64Gi", got ""'),
        ("  ", 'expected a quantity such as "2", "500m" or "64Gi", got ""'),
        ("1" * 65, "quantity is too long (65 characters)"),
    ],
)
def test_a_quantity_that_is_empty_or_too_long(value: str, message: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(value)
    assert str(info.value) == message


def test_quantities_at_their_limits() -> None:
    assert parse_quantity("0" * 62 + "5m") == Decimal("0.005")
    assert parse_cpu(10**12) == 10**15
    assert parse_memory(2**80) == 2**80
    for call, value, message in (
        (parse_cpu, 10**12 + 1, "CPU quantity is unreasonably large: 1000000000001"),
        (parse_memory, 2**80 + 1, f"memory quantity is unreasonably large: {2**80 + 1}"),
        (parse_cpu, "-1", "must not be negative, got -1"),
        (parse_memory, "-1Gi", "must not be negative, got -1Gi"),
    ):
        with pytest.raises(QuantityError) as info:
            call(value)
        assert str(info.value) == message
