"""Admission decisions in full: every refusal names the request it refuses and what the profile
would have held, a profile without CPU or memory settings needs none of either, a profile that
needs exactly the team's quota fits it, and the messages name the free amounts and whom to ask."""

from __future__ import annotations

import pytest

from hub_ext.policy import (
    Ledger,
    MLTeamsConfig,
    Outcome,
    Reason,
    SpawnQueue,
    SpawnRequest,
    decide,
    load_config,
)
from hub_ext.policy.config import QuotaOverride
from tests.unit.policy.sample import GIB, pod, req, sample_config, sample_raw

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("request_", "reason", "needs", "message"),
    [
        (
            req(team="robotics"),
            Reason.UNKNOWN_TEAM,
            (0, 0, 0),
            "You cannot start servers in team 'robotics'.",
        ),
        (
            req(profile="huge"),
            Reason.UNKNOWN_PROFILE,
            (0, 0, 0),
            "There is no profile 'huge'. Choose one of: cpu, pytorch-1gpu, pytorch-2gpu, flex.",
        ),
        (
            req(team="research", profile="flex"),
            Reason.PROFILE_NOT_ALLOWED,
            (0, 0, 0),
            "Team research may not use profile flex. Choose one of: cpu.",
        ),
        (
            req(profile="flex", gpus=9),
            Reason.GPUS_NOT_ALLOWED,
            (0, 0, 0),
            "Profile flex offers 1 to 4 GPUs; 9 cannot be chosen.",
        ),
        (
            req(profile="flex", gpus=3),
            Reason.EXCEEDS_USER_CAP,
            (3, 0, 0),
            "Profile flex needs 3 GPUs but team vision allows at most 2 per user. Choose a "
            "smaller profile or ask your team lead (#ml-vision).",
        ),
    ],
)
def test_every_refusal_names_its_request_and_needs(
    request_: SpawnRequest, reason: Reason, needs: tuple[int, int, int], message: str
) -> None:
    decision = decide(sample_config(), Ledger(), request_)
    assert decision.rejected and decision.reason is reason
    assert decision.request == request_
    assert (decision.gpus, decision.cpu, decision.memory) == needs
    assert decision.message == message


def test_a_profile_needing_exactly_the_quota_fits_it() -> None:
    raw = sample_raw()
    raw["teams"]["research"]["quota"] = {"gpus": 0, "cpu": "2", "memory": "8Gi"}
    decision = decide(load_config(raw), Ledger(), req(team="research", profile="cpu"))
    assert decision.admitted, decision.message
    assert (decision.cpu, decision.memory) == (2000, 8 * GIB)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            QuotaOverride(cpu=1500),
            "Profile cpu needs 2 CPUs but team research's quota is 1.5 CPUs. Choose a smaller "
            "profile or ask your team lead.",
        ),
        (
            QuotaOverride(memory=4 * GIB),
            "Profile cpu needs 8 GiB of memory but team research's quota is 4 GiB. Choose a "
            "smaller profile or ask your team lead.",
        ),
    ],
)
def test_a_profile_over_a_lowered_quota_can_never_start(
    override: QuotaOverride, message: str
) -> None:
    ledger = Ledger(overrides={"research": override})
    decision = decide(sample_config(), ledger, req(team="research", profile="cpu"))
    assert (decision.reason, decision.http_status) == (Reason.EXCEEDS_TEAM_QUOTA, 403)
    assert (decision.gpus, decision.cpu, decision.memory) == (0, 2000, 8 * GIB)
    assert decision.message == message


def test_a_profile_without_cpu_or_memory_settings_needs_none() -> None:
    """The nlp team's CPU and memory are fully held; a GPU profile that sets neither still
    starts, and its reservation holds no CPU or memory."""
    config = sample_config()
    ledger = Ledger()
    ledger.upsert_pod(
        pod("nlp", "ada", 0, name="a", namespace="ml-nlp", cpu=64000, memory=256 * GIB)
    )
    decision = decide(config, ledger, req("bob", "nlp", "queued-4gpu"))
    assert decision.admitted, decision.message
    assert (decision.gpus, decision.cpu, decision.memory) == (4, 0, 0)


def test_a_team_over_its_memory_quota_has_none_free() -> None:
    """After the quota was lowered below what is held, the message says nothing is free
    (not a negative amount) and, for a team without a contact, whom to ask."""
    config = sample_config()
    ledger = Ledger()
    ledger.upsert_pod(pod("research", "bob", 0, memory=17 * GIB))
    decision = decide(config, ledger, req(user="ada", team="research", profile="cpu"))
    assert decision.reason is Reason.TEAM_MEMORY_IN_USE and decision.request.user == "ada"
    assert (decision.gpus, decision.cpu, decision.memory) == (0, 2000, 8 * GIB)
    assert decision.message == (
        "Team research has 0 bytes of 16 GiB memory free and profile cpu needs 8 GiB. "
        "Stop a server or ask your team lead."
    )


def _nlp_with_a_line(*waiting: str) -> tuple[Ledger, SpawnQueue, MLTeamsConfig]:
    """Team nlp (4 GPUs, also offered the unqueued pytorch-1gpu) with ``waiting`` users queued
    for 4 GPUs each while ada held one; ada's GPU is then free again."""
    raw = sample_raw()
    raw["teams"]["nlp"]["profiles"].append("pytorch-1gpu")
    config = load_config(raw)
    ledger = Ledger()
    ledger.upsert_pod(pod("nlp", "ada", 1, name="a", namespace="ml-nlp"))
    queue = SpawnQueue()
    for user in waiting:
        decision = decide(config, ledger, req(user, "nlp", "queued-4gpu"), queue=queue)
        assert decision.queued
        queue.enqueue(config, decision, now=0.0)
    ledger.remove_pod("ml-nlp", "a")
    return ledger, queue, config


def test_the_head_of_the_line_is_admitted_when_it_asks_again() -> None:
    ledger, queue, config = _nlp_with_a_line("bob", "cy")
    assert decide(config, ledger, req("bob", "nlp", "queued-4gpu"), queue=queue).admitted
    behind = decide(config, ledger, req("cy", "nlp", "queued-4gpu"), queue=queue)
    assert behind.reason is Reason.QUEUE_WAITING


@pytest.mark.parametrize(
    ("waiting", "text"),
    [(("bob",), "1 earlier request is"), (("bob", "cy"), "2 earlier requests are")],
)
def test_an_unqueued_profile_is_refused_while_others_wait(
    waiting: tuple[str, ...], text: str
) -> None:
    ledger, queue, config = _nlp_with_a_line(*waiting)
    decision = decide(config, ledger, req("dee", "nlp", "pytorch-1gpu"), queue=queue)
    assert (decision.outcome, decision.reason) == (Outcome.REJECT, Reason.QUEUE_WAITING)
    assert decision.message == (
        f"Team nlp has 4 of 4 GPUs free, but {text} waiting for them (you hold 0 of your 4; "
        "you asked for 1). Stop a server or ask your team lead."
    )
