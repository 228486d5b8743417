"""The admission decision: quotas, per-user caps, CPU and memory, queueing, messages, speed."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from hub_ext.policy import (
    Decision,
    Ledger,
    Outcome,
    QuotaOverride,
    Reason,
    SpawnQueue,
    SpawnRequest,
    decide,
    decide_and_reserve,
    load_config,
    profile_choices,
)
from tests.unit.policy.sample import (
    GIB,
    ledger_with,
    pod,
    req,
    reservation,
    sample_config,
    sample_raw,
)

pytestmark = pytest.mark.unit

CONFIG = sample_config()


@dataclass(frozen=True)
class Case:
    name: str
    request: SpawnRequest
    holders: tuple[tuple[str, str, int], ...] = ()
    outcome: Outcome = Outcome.ADMIT
    reason: Reason | None = None
    message: str = ""
    status: int = 200
    overrides: dict[str, QuotaOverride] = field(default_factory=dict)


CASES = [
    Case(
        "cpu profile on an empty team",
        req(profile="cpu"),
        message="Starting with no GPU in team vision.",
    ),
    Case(
        "one GPU free",
        req(),
        holders=(("vision", "bob", 2),) * 3 + (("vision", "cy", 1),),
        message="Starting with 1 GPU in team vision.",
    ),
    Case(
        "cpu profile while every GPU is taken",
        req(profile="cpu"),
        holders=(("vision", "bob", 2),) * 4,
    ),
    Case(
        "per-user cap reached",
        req(),
        holders=(("vision", "ada", 2),),
        outcome=Outcome.REJECT,
        reason=Reason.USER_GPUS_IN_USE,
        status=429,
        message="Team vision has 6 of 8 GPUs free (you hold 2 of your 2; you asked for 1). "
        "Stop one of your servers or ask your team lead (#ml-vision).",
    ),
    Case(
        "per-user cap would be passed",
        req(profile="pytorch-2gpu"),
        holders=(("vision", "ada", 1),),
        outcome=Outcome.REJECT,
        reason=Reason.USER_GPUS_IN_USE,
        status=429,
        message="you hold 1 of your 2; you asked for 2",
    ),
    Case(
        "another user's GPUs do not count against the cap",
        req(profile="pytorch-2gpu"),
        holders=(("vision", "bob", 2),),
    ),
    Case(
        "GPUs held in another team do not count",
        req(profile="pytorch-2gpu"),
        holders=(("nlp", "ada", 4),),
    ),
    Case(
        "team full",
        req(),
        holders=(("vision", "bob", 2),) * 4,
        outcome=Outcome.REJECT,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=429,
        message="Team vision has 0 of 8 GPUs free (you hold 0 of your 2; you asked for 1). "
        "Stop a server or ask your team lead (#ml-vision).",
    ),
    Case(
        "team nearly full for two GPUs",
        req(profile="pytorch-2gpu"),
        holders=(("vision", "bob", 2),) * 3 + (("vision", "cy", 1),),
        outcome=Outcome.REJECT,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=429,
        message="Team vision has 1 of 8 GPUs free",
    ),
    Case(
        "team full, profile queues",
        req(team="nlp", profile="queued-1gpu"),
        holders=(("nlp", "bob", 4),),
        outcome=Outcome.QUEUE,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=202,
        message="Team nlp has 0 of 4 GPUs free (you hold 0 of your 4; you asked for 1). "
        "Your server is queued and starts when GPUs free up (waiting at most 10 "
        "minutes).",
    ),
    Case(
        "profile of another team",
        req(profile="queued-1gpu"),
        outcome=Outcome.REJECT,
        reason=Reason.PROFILE_NOT_ALLOWED,
        status=403,
        message="Team vision may not use profile queued-1gpu. Choose one of: cpu, "
        "pytorch-1gpu, pytorch-2gpu, flex.",
    ),
    Case(
        "unknown profile",
        req(profile="tensorflow"),
        outcome=Outcome.REJECT,
        reason=Reason.UNKNOWN_PROFILE,
        status=400,
        message="There is no profile 'tensorflow'.",
    ),
    Case(
        "unknown team",
        req(team="ghost"),
        outcome=Outcome.REJECT,
        reason=Reason.UNKNOWN_TEAM,
        status=403,
        message="You cannot start servers in team 'ghost'.",
    ),
    Case("chosen GPU count within the range", req(profile="flex", gpus=2)),
    Case(
        "chosen GPU count above the per-user cap",
        req(profile="flex", gpus=3),
        outcome=Outcome.REJECT,
        reason=Reason.EXCEEDS_USER_CAP,
        status=403,
        message="Profile flex needs 3 GPUs but team vision allows at most 2 per user. "
        "Choose a smaller profile or ask your team lead (#ml-vision).",
    ),
    Case(
        "chosen GPU count outside the range",
        req(profile="flex", gpus=0),
        outcome=Outcome.REJECT,
        reason=Reason.GPUS_NOT_ALLOWED,
        status=400,
        message="Profile flex offers 1 to 4 GPUs; 0 cannot be chosen.",
    ),
    Case(
        "GPU count on a fixed profile",
        req(gpus=2),
        outcome=Outcome.REJECT,
        reason=Reason.GPUS_NOT_ALLOWED,
        status=400,
        message="has a fixed GPU count of 1",
    ),
    Case(
        "override shrinks the team below the profile",
        req(profile="pytorch-2gpu"),
        overrides={"vision": QuotaOverride(gpus=1)},
        outcome=Outcome.REJECT,
        reason=Reason.EXCEEDS_TEAM_QUOTA,
        status=403,
        message="Profile pytorch-2gpu needs 2 GPUs but team vision's quota is 1 GPU.",
    ),
    Case(
        "override shrinks free GPUs",
        req(),
        holders=(("vision", "bob", 2),),
        overrides={"vision": QuotaOverride(gpus=2)},
        outcome=Outcome.REJECT,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=429,
        message="Team vision has 0 of 2 GPUs free",
    ),
    Case(
        "override grows the team",
        req(),
        holders=(("vision", "bob", 2),) * 4,
        overrides={"vision": QuotaOverride(gpus=9)},
    ),
    Case(
        "override raises the per-user cap",
        req(),
        holders=(("vision", "ada", 2),),
        overrides={"vision": QuotaOverride(gpus_per_user=3)},
    ),
    Case(
        "team without GPUs, cpu fits",
        req(team="research", profile="cpu"),
        holders=(("research", "bob", 0),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decide(case: Case) -> None:
    ledger = ledger_with(*case.holders)
    for team, override in case.overrides.items():
        ledger.set_quota_override(team, override)
    decision = decide(CONFIG, ledger, case.request)
    assert decision.outcome is case.outcome, decision.message
    assert decision.reason is case.reason
    assert case.message in decision.message
    assert decision.http_status == case.status


@pytest.mark.parametrize(
    ("servers", "profile", "outcome", "reason", "message"),
    [
        (1, "cpu", Outcome.ADMIT, None, ""),
        (
            2,
            "cpu",
            Outcome.REJECT,
            Reason.TEAM_CPU_IN_USE,
            "Team research has 0 CPUs of 4 CPUs free and profile cpu needs 2 CPUs.",
        ),
    ],
)
def test_cpu_quota(
    servers: int, profile: str, outcome: Outcome, reason: Reason | None, message: str
) -> None:
    ledger = Ledger.from_pods(
        [pod("research", f"u{i}", 0, cpu=2000, memory=GIB) for i in range(servers)]
    )
    decision = decide(CONFIG, ledger, req(team="research", profile=profile))
    assert (decision.outcome, decision.reason) == (outcome, reason)
    assert message in decision.message


def test_memory_quota() -> None:
    ledger = Ledger.from_pods([pod("research", "bob", 0, cpu=0, memory=10 * GIB)])
    decision = decide(CONFIG, ledger, req(team="research", profile="cpu"))
    assert decision.reason is Reason.TEAM_MEMORY_IN_USE
    assert decision.message.startswith(
        "Team research has 6 GiB of 16 GiB memory free and profile cpu needs 8 GiB."
    )
    assert decision.http_status == 429


def test_cpu_and_memory_shortage_is_not_queued_even_for_queueing_profiles() -> None:
    ledger = Ledger.from_pods([pod("nlp", "bob", 0, cpu=60_000, memory=0, namespace="ml-nlp")])
    decision = decide(CONFIG, ledger, req(team="nlp", profile="queued-1gpu"))
    assert decision.rejected and decision.reason is Reason.TEAM_CPU_IN_USE


def test_per_user_shortage_is_not_queued() -> None:
    config = sample_config()
    ledger = ledger_with(("nlp", "ada", 3))
    ledger.set_quota_override("nlp", QuotaOverride(gpus_per_user=3))
    decision = decide(config, ledger, req(team="nlp", profile="queued-1gpu"))
    assert decision.rejected and decision.reason is Reason.USER_GPUS_IN_USE


def test_the_servers_own_holding_is_not_counted_against_it() -> None:
    ledger = ledger_with(("vision", "bob", 2), ("vision", "bob", 2), ("vision", "cy", 2))
    ledger.reserve(reservation("vision", "ada", 2, server_name="gpu"))
    request = req(profile="pytorch-2gpu", server_name="gpu")
    assert decide(CONFIG, ledger, request).admitted
    ledger.upsert_pod(pod("vision", "ada", 2, server_name="gpu"))
    assert decide(CONFIG, ledger, request).admitted
    other = req(profile="pytorch-2gpu", server_name="other")
    assert decide(CONFIG, ledger, other).reason is Reason.USER_GPUS_IN_USE


def test_earlier_queued_spawns_come_first() -> None:
    ledger = ledger_with(("nlp", "bob", 4))
    queue = SpawnQueue()
    waiting = decide(CONFIG, ledger, req(user="cy", team="nlp", profile="queued-4gpu"))
    queue.enqueue(CONFIG, waiting, now=0.0)
    ledger.replace_pods([pod("nlp", "bob", 1)])

    newcomer = decide(CONFIG, ledger, req(team="nlp", profile="queued-1gpu"), queue=queue)
    assert newcomer.queued and newcomer.reason is Reason.QUEUE_WAITING
    assert newcomer.message.startswith(
        "Team nlp has 3 of 4 GPUs free, but 1 earlier request is waiting for them"
    )
    cpu_only = decide(CONFIG, ledger, req(team="nlp", profile="cpu"), queue=queue)
    assert cpu_only.admitted
    other_team = decide(CONFIG, ledger, req(profile="pytorch-1gpu"), queue=queue)
    assert other_team.admitted


def test_decision_carries_resources_and_makes_a_reservation() -> None:
    decision = decide(CONFIG, Ledger(), req(server_name="gpu"))
    assert (decision.gpus, decision.cpu, decision.memory) == (1, 8000, 64 * GIB)
    held = decision.reservation(now=12.5)
    assert (held.server, held.team, held.user, held.profile) == (
        "ada/gpu",
        "vision",
        "ada",
        "pytorch-1gpu",
    )
    assert (held.gpus, held.created_at) == (1, 12.5)


@pytest.mark.parametrize(
    ("holders", "reserved"),
    [((), True), ((("vision", "ada", 2),), False), ((("vision", "bob", 2),) * 4, False)],
)
def test_decide_and_reserve_reserves_only_when_admitted(
    holders: tuple[tuple[str, str, int], ...], reserved: bool
) -> None:
    ledger = ledger_with(*holders)
    before = ledger.team_usage("vision").gpus
    decision: Decision = decide_and_reserve(CONFIG, ledger, req(), now=1.0)
    assert decision.admitted is reserved
    assert (ledger.reservation("ada/") is not None) is reserved
    assert ledger.team_usage("vision").gpus == before + (1 if reserved else 0)


class CountingLedger:
    """Wraps a ledger and counts the queries made of it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        self.calls += 1
        return getattr(self.ledger, name)


def _big_ledger(pods: int) -> Ledger:
    ledger = Ledger()
    for index in range(pods):
        team = "vision" if index % 2 else "nlp"
        ledger.upsert_pod(pod(team, f"user{index}", 0, server_name=str(index)))
    return ledger


@pytest.mark.parametrize("pods", [10, 5000])
def test_decision_makes_a_fixed_number_of_ledger_queries(pods: int) -> None:
    counting = CountingLedger(_big_ledger(pods))
    decide(CONFIG, counting, req())  # type: ignore[arg-type]
    assert counting.calls <= 6


def test_decision_time_does_not_grow_with_pod_count() -> None:
    def best_time(ledger: Ledger) -> float:
        request = req()
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(300):
                decide(CONFIG, ledger, request)
            runs.append(time.perf_counter() - start)
        return min(runs)

    small, large = best_time(_big_ledger(10)), best_time(_big_ledger(5000))
    assert large < small * 2 + 0.005, (small, large)


# -- per-user GPU grants --------------------------------------------------------------------------

FULL_VISION = (
    ("vision", "cy", 2),
    ("vision", "dan", 2),
    ("vision", "eve", 2),
    ("vision", "fay", 2),
)


@dataclass(frozen=True)
class GrantCase:
    name: str
    request: SpawnRequest
    holders: tuple[tuple[str, str, int], ...] = ()
    grants: tuple[tuple[tuple[str, str], int], ...] = ((("vision", "bob"), 2),)
    overrides: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    outcome: Outcome = Outcome.ADMIT
    reason: Reason | None = None
    message: str = ""
    status: int = 200


GRANT_CASES = [
    GrantCase(
        "alice cannot take bob's unused grant when the team is full",
        req("alice"),
        holders=FULL_VISION,
        outcome=Outcome.REJECT,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=429,
        message="Team vision has 0 of 8 GPUs free (you hold 0 of your 2; you asked for 1). "
        "Stop a server or ask your team lead (#ml-vision).",
    ),
    GrantCase(
        "bob's next spawn gets in on a full team",
        req("bob"),
        holders=FULL_VISION,
        message="Starting with 1 GPU in team vision.",
    ),
    GrantCase(
        "bob takes his whole grant on a full team",
        req("bob", profile="pytorch-2gpu"),
        holders=FULL_VISION,
        message="Starting with 2 GPUs in team vision.",
    ),
    GrantCase(
        "bob cannot go past his grant",
        req("bob"),
        holders=(*FULL_VISION, ("vision", "bob", 2)),
        outcome=Outcome.REJECT,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=429,
        message="Team vision has 0 of 10 GPUs free (you hold 2 of your 4; you asked for 1).",
    ),
    GrantCase(
        "after bob uses his grant alice is not squeezed",
        req("alice", profile="pytorch-2gpu"),
        holders=(
            ("vision", "bob", 2),
            ("vision", "bob", 2),
            ("vision", "cy", 2),
            ("vision", "dan", 2),
        ),
        message="Starting with 2 GPUs in team vision.",
    ),
    GrantCase(
        "alice still has only the normal pool",
        req("alice"),
        holders=(("vision", "bob", 2), ("vision", "bob", 2), *FULL_VISION[:3]),
        outcome=Outcome.REJECT,
        reason=Reason.TEAM_GPUS_IN_USE,
        status=429,
        message="Team vision has 0 of 10 GPUs free (you hold 0 of your 2; you asked for 1).",
    ),
    GrantCase(
        "the grantee's cap is raised",
        req("bob", profile="flex", gpus=4),
        message="Starting with 4 GPUs in team vision.",
    ),
    GrantCase(
        "only the grantee's cap is raised",
        req("alice", profile="flex", gpus=3),
        outcome=Outcome.REJECT,
        reason=Reason.EXCEEDS_USER_CAP,
        status=403,
        message="Profile flex needs 3 GPUs but team vision allows at most 2 per user.",
    ),
    GrantCase(
        "the grantee's raised cap is reached",
        req("bob"),
        holders=(("vision", "bob", 2), ("vision", "bob", 2)),
        outcome=Outcome.REJECT,
        reason=Reason.USER_GPUS_IN_USE,
        status=429,
        message="Team vision has 6 of 10 GPUs free (you hold 4 of your 4; you asked for 1).",
    ),
    GrantCase(
        "a grant in another team does not help",
        req("alice", profile="flex", gpus=3),
        grants=((("nlp", "alice"), 2),),
        outcome=Outcome.REJECT,
        reason=Reason.EXCEEDS_USER_CAP,
        status=403,
        message="allows at most 2 per user",
    ),
    GrantCase(
        "a grant goes on top of a shrunken team",
        req("bob", profile="pytorch-2gpu"),
        overrides=(("vision", (("gpus", 1),)),),
    ),
    GrantCase(
        "a shrunken team stays shrunk for the others",
        req("alice", profile="pytorch-2gpu"),
        overrides=(("vision", (("gpus", 1),)),),
        outcome=Outcome.REJECT,
        reason=Reason.EXCEEDS_TEAM_QUOTA,
        status=403,
        message="Profile pytorch-2gpu needs 2 GPUs but team vision's quota is 1 GPU.",
    ),
]


@pytest.mark.parametrize("case", GRANT_CASES, ids=[case.name for case in GRANT_CASES])
def test_decide_with_grants(case: GrantCase) -> None:
    config = sample_config()
    ledger = ledger_with(*case.holders)
    ledger.set_quota_overrides(
        {team: QuotaOverride(**dict(fields)) for team, fields in case.overrides}
    )
    ledger.set_user_grants(dict(case.grants))
    decision = decide(config, ledger, case.request)
    assert decision.outcome is case.outcome, decision.message
    assert decision.reason is case.reason
    assert case.message in decision.message
    assert decision.http_status == case.status


def test_queued_spawns_see_grants_used_earlier_in_the_same_scan() -> None:
    raw = sample_raw()
    raw["teams"]["nlp"]["quota"] = {"gpus": 4, "gpus_per_user": 1}
    raw["teams"]["nlp"]["profiles"] = ["cpu", "queued-1gpu"]
    config = load_config(raw)
    full = ledger_with(*(("nlp", f"w{index}", 1) for index in range(4)))
    queue = SpawnQueue()
    for now, request in enumerate(
        [
            req("bob", "nlp", "queued-1gpu", server_name="a"),
            req("bob", "nlp", "queued-1gpu", server_name="b"),
            req("alice", "nlp", "queued-1gpu"),
        ]
    ):
        decision = decide(config, full, request)
        assert decision.queued, decision.message
        queue.enqueue(config, decision, now=float(now))

    ledger = ledger_with(("nlp", "cy", 1), ("nlp", "dan", 1), ("nlp", "bob", 1))
    ledger.set_user_grants({("nlp", "bob"): 2})
    result = queue.take_admissible(config, ledger, now=10.0)
    assert [entry.server for entry, _ in result.admit] == ["bob/a", "bob/b", "alice/"]
    assert result.drop == []
    nlp = config.teams["nlp"]
    assert ledger.team_usage("nlp").gpus == 6 == ledger.effective_quota(nlp).gpus
    assert (
        ledger.user_usage("nlp", "bob").gpus
        == 3
        == ledger.effective_quota(nlp, "bob").gpus_per_user
    )


@pytest.mark.parametrize(
    ("user", "text"),
    [
        ("bob", "team vision: 6 of 10 GPUs free; you hold 0 of your 4"),
        ("alice", "team vision: 4 of 8 GPUs free; you hold 0 of your 2"),
    ],
)
def test_the_form_shows_the_users_own_figures(user: str, text: str) -> None:
    config = sample_config()
    ledger = ledger_with(("vision", "cy", 2), ("vision", "dan", 2))
    ledger.set_user_grants({("vision", "bob"): 2})
    choices = {
        choice.profile.name: choice for choice in profile_choices(config, ledger, "vision", user)
    }
    assert choices["pytorch-1gpu"].availability == text
    assert choices["flex"].enabled


@pytest.mark.parametrize("seed", range(10))
def test_grants_never_let_the_team_pass_its_total(seed: int) -> None:
    rng = random.Random(seed)
    config = sample_config()
    vision = config.teams["vision"]
    users = ["ada", "bob", "cy", "dan", "eve"]
    grants = {("vision", "bob"): rng.randint(1, 4), ("vision", "cy"): rng.randint(0, 2)}
    ledger = Ledger()
    ledger.set_user_grants(grants)
    running: list[str] = []
    for step in range(200):
        if running and rng.random() < 0.35:
            ledger.release(running.pop(rng.randrange(len(running))))
        else:
            user = rng.choice(users)
            profile = rng.choice(["pytorch-1gpu", "pytorch-2gpu", "flex"])
            gpus = rng.randint(1, 4) if profile == "flex" else None
            request = req(user, profile=profile, gpus=gpus, server_name=f"s{step}")
            if decide_and_reserve(config, ledger, request, now=float(step)).admitted:
                running.append(request.server)
        assert ledger.team_usage("vision").gpus <= vision.quota.gpus + sum(grants.values())
        assert ledger.team_usage("vision").gpus <= ledger.effective_quota(vision).gpus
        for user in users:
            cap = vision.quota.gpus_per_user + grants.get(("vision", user), 0)
            assert ledger.user_usage("vision", user).gpus <= cap
