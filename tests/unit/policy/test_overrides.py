"""Stored quota overrides and GPU grants: which are in force, and who may make them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hub_ext.policy import (
    ActiveOverrides,
    Ledger,
    OverrideRecord,
    OverrideRefused,
    Quota,
    QuotaOverride,
    active_overrides,
    check_grant,
    check_team_override,
)
from tests.unit.policy.sample import GIB, sample_config

pytestmark = pytest.mark.unit

NOW = 1000.0

Fields = tuple[tuple[str, Any], ...]
"""Keyword arguments as pairs, so that a parameter table holds nothing mutable."""


def record(
    id: str,
    team: Any = "vision",
    user: Any = None,
    *,
    created_at: Any = 0.0,
    expires_at: Any = None,
    revoked: Any = False,
    **fields: Any,
) -> OverrideRecord:
    values: dict[str, Any] = {
        "gpus": None,
        "gpus_per_user": None,
        "cpu": None,
        "memory": None,
        "extra_gpus": None,
    }
    values.update(fields)
    return OverrideRecord(
        id=id,
        team=team,
        user=user,
        created_at=created_at,
        expires_at=expires_at,
        revoked=revoked,
        **values,
    )


def grant(id: str, user: str, extra: Any, team: str = "vision", **fields: Any) -> OverrideRecord:
    return record(id, team, user, extra_gpus=extra, **fields)


# -- which records are in force -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "teams", "grants", "next_expiry"),
    [
        pytest.param((), (), (), None, id="no records"),
        pytest.param(
            (record("a", gpus=4, created_at=1.0), record("b", gpus=6, created_at=2.0)),
            (("vision", (("gpus", 6),)),),
            (),
            None,
            id="newest team override wins",
        ),
        pytest.param(
            (record("b", gpus=6, created_at=2.0), record("a", gpus=4, created_at=1.0)),
            (("vision", (("gpus", 6),)),),
            (),
            None,
            id="newest wins whatever the order listed",
        ),
        pytest.param(
            (record("a", gpus=4, created_at=1.0), record("b", gpus=6, created_at=1.0)),
            (("vision", (("gpus", 6),)),),
            (),
            None,
            id="on a tie the later listed wins",
        ),
        pytest.param(
            (
                record("a", gpus=4, created_at=1.0),
                record("b", gpus_per_user=1, created_at=2.0),
            ),
            (("vision", (("gpus_per_user", 1),)),),
            (),
            None,
            id="the newest record replaces the older one, it does not merge",
        ),
        pytest.param(
            (record("a", gpus=4, created_at=1.0), record("b", created_at=2.0)),
            (("vision", ()),),
            (),
            None,
            id="a newest record setting nothing returns to the configured quota",
        ),
        pytest.param(
            (
                record("a", gpus=4, created_at=1.0),
                record("b", gpus=6, created_at=2.0, revoked=True),
            ),
            (("vision", (("gpus", 4),)),),
            (),
            None,
            id="revoked newest is ignored",
        ),
        pytest.param(
            (
                record("a", gpus=4, created_at=1.0, expires_at=NOW + 60),
                record("b", gpus=6, created_at=2.0, expires_at=NOW),
            ),
            (("vision", (("gpus", 4),)),),
            (),
            NOW + 60,
            id="expiring exactly now is expired",
        ),
        pytest.param(
            (record("b", gpus=6, created_at=2.0, expires_at=NOW + 0.001),),
            (("vision", (("gpus", 6),)),),
            (),
            NOW + 0.001,
            id="expiring just after now is active",
        ),
        pytest.param(
            (record("a", gpus=2, expires_at=NOW - 1), record("b", gpus=1, revoked=True)),
            (),
            (),
            None,
            id="nothing active",
        ),
        pytest.param(
            (
                record("a", "vision", gpus=4),
                record("b", "nlp", cpu=8000, memory=GIB),
            ),
            (("vision", (("gpus", 4),)), ("nlp", (("cpu", 8000), ("memory", GIB)))),
            (),
            None,
            id="each team has its own override, in Python units",
        ),
        pytest.param(
            (
                grant("a", "bob", 1),
                grant("b", "bob", 2, expires_at=NOW + 30),
                grant("c", "ada", 1, team="nlp"),
            ),
            (),
            ((("vision", "bob"), 3), (("nlp", "ada"), 1)),
            NOW + 30,
            id="grants add up per team and user",
        ),
        pytest.param(
            (
                grant("a", "bob", 2, revoked=True),
                grant("b", "bob", 2, expires_at=NOW),
                grant("c", "cy", 1, expires_at=NOW + 5),
            ),
            (),
            ((("vision", "cy"), 1),),
            NOW + 5,
            id="revoked and expired grants are ignored, and not in next_expiry",
        ),
        pytest.param(
            (
                record("a", gpus=4, extra_gpus=3),
                grant("b", "bob", 2, gpus=1),
            ),
            (("vision", (("gpus", 4),)),),
            ((("vision", "bob"), 2),),
            None,
            id="a team record grants nothing and a grant changes no team field",
        ),
        pytest.param(
            (
                record("a", gpus=4, created_at=1.0, expires_at=NOW + 50),
                record("b", gpus=6, created_at=2.0, expires_at=NOW + 10),
            ),
            (("vision", (("gpus", 6),)),),
            (),
            NOW + 10,
            id="next_expiry is the earliest active expiry",
        ),
        pytest.param(
            (record("a", gpus=4, created_at=1.0, expires_at=NOW + 50), grant("b", "bob", 1)),
            (("vision", (("gpus", 4),)),),
            ((("vision", "bob"), 1),),
            NOW + 50,
            id="records without expiry do not set next_expiry",
        ),
    ],
)
def test_active_overrides(
    records: tuple[OverrideRecord, ...],
    teams: tuple[tuple[str, Fields], ...],
    grants: tuple[tuple[tuple[str, str], int], ...],
    next_expiry: float | None,
) -> None:
    active = active_overrides(list(records), NOW)
    assert isinstance(active, ActiveOverrides)
    assert dict(active.teams) == {team: QuotaOverride(**dict(fields)) for team, fields in teams}
    assert dict(active.grants) == dict(grants)
    assert active.next_expiry == next_expiry


@pytest.mark.parametrize(
    ("records", "teams", "grants"),
    [
        pytest.param(
            (record("a", gpus=-1, gpus_per_user=1),),
            (("vision", (("gpus_per_user", 1),)),),
            (),
            id="negative gpus left out",
        ),
        pytest.param(
            (record("a", gpus="4", gpus_per_user=True, cpu=1.5, memory="lots"),),
            (("vision", ()),),
            (),
            id="values of the wrong type left out",
        ),
        pytest.param(
            (record("a", gpus=2, gpus_per_user=3),),
            (("vision", (("gpus", 2), ("gpus_per_user", 2))),),
            (),
            id="per-user cap above the record's gpus lowered to them",
        ),
        pytest.param(
            (record("a", gpus=10**9, cpu=-5, memory=-1),),
            (("vision", ()),),
            (),
            id="out of range values left out",
        ),
        pytest.param(
            (
                grant("a", "bob", 0),
                grant("b", "bob", -3),
                grant("c", "bob", 65),
                grant("d", "bob", True),
                grant("e", "bob", "2"),
                grant("f", "bob", None),
                grant("g", "bob", 2.0),
                grant("h", "", 1),
                grant("i", "cy", 64),
            ),
            (),
            ((("vision", "cy"), 64),),
            id="grants that are not 1 to 64 GPUs ignored",
        ),
        pytest.param(
            (record("a", "", gpus=1), record("b", None, gpus=1), grant("c", "bob", 1, team="")),
            (),
            (),
            id="records without a team ignored",
        ),
        pytest.param(
            (
                record("a", gpus=1, expires_at="soon"),
                record("b", gpus=2, expires_at=math.nan),
                record("c", gpus=3, expires_at=True),
            ),
            (),
            (),
            id="unreadable expiries count as expired",
        ),
        pytest.param(
            (
                record("a", gpus=1, created_at=5.0),
                record("b", gpus=2, created_at="later"),
                record("c", gpus=3, created_at=math.nan),
            ),
            (("vision", (("gpus", 1),)),),
            (),
            id="unreadable creation times count as oldest",
        ),
        pytest.param(
            (record("a", gpus=1, expires_at=math.inf),),
            (("vision", (("gpus", 1),)),),
            (),
            id="an infinite expiry never expires",
        ),
    ],
)
def test_odd_stored_values_never_raise(
    records: tuple[OverrideRecord, ...],
    teams: tuple[tuple[str, Fields], ...],
    grants: tuple[tuple[tuple[str, str], int], ...],
) -> None:
    active = active_overrides(records, NOW)
    assert dict(active.teams) == {team: QuotaOverride(**dict(fields)) for team, fields in teams}
    assert dict(active.grants) == dict(grants)
    assert active.next_expiry is None
    config = sample_config()
    ledger = Ledger()
    ledger.set_quota_overrides(active.teams)
    ledger.set_user_grants(active.grants)
    for team in config.teams.values():
        for user in (None, "bob", "cy"):
            quota = ledger.effective_quota(team, user)
            assert 0 <= quota.gpus_per_user <= quota.gpus


def test_active_overrides_feed_the_ledger() -> None:
    config = sample_config()
    vision = config.teams["vision"]
    records = [
        record("a", gpus=4, gpus_per_user=1, created_at=1.0, expires_at=NOW + 100),
        grant("b", "bob", 2, expires_at=NOW + 50),
    ]
    ledger = Ledger()
    active = active_overrides(records, NOW)
    ledger.set_quota_overrides(active.teams)
    ledger.set_user_grants(active.grants)
    assert (ledger.effective_quota(vision).gpus, ledger.effective_quota(vision).gpus_per_user) == (
        6,
        1,
    )
    assert ledger.effective_quota(vision, "bob").gpus_per_user == 3
    assert active.next_expiry == NOW + 50

    later = active_overrides(records, NOW + 50)
    ledger.set_quota_overrides(later.teams)
    ledger.set_user_grants(later.grants)
    assert ledger.effective_quota(vision, "bob") == ledger.effective_quota(vision)
    assert ledger.effective_quota(vision).gpus == 4
    assert later.next_expiry == NOW + 100

    gone = active_overrides(records, NOW + 100)
    ledger.set_quota_overrides(gone.teams)
    ledger.set_user_grants(gone.grants)
    assert ledger.effective_quota(vision) == vision.quota
    assert gone.next_expiry is None


# -- who may change a team's quota ----------------------------------------------------------------

CURRENT: Fields = (("gpus", 8), ("gpus_per_user", 2), ("cpu", 64_000), ("memory", 256 * GIB))


@pytest.mark.parametrize(
    ("by_admin", "change", "status", "message"),
    [
        pytest.param(False, (("gpus_per_user", 1),), None, "", id="lead lowers per-user cap"),
        pytest.param(False, (("gpus_per_user", 0),), None, "", id="lead lowers it to zero"),
        pytest.param(False, (("gpus_per_user", 2),), None, "", id="lead keeps per-user cap"),
        pytest.param(False, (), None, "", id="lead changes nothing"),
        pytest.param(
            False,
            (("gpus_per_user", 3),),
            403,
            "Leads may lower team vision's GPUs per user (now 2), not raise it; "
            "ask a platform admin.",
            id="lead may not raise per-user cap",
        ),
        pytest.param(
            False,
            (("gpus", 4),),
            403,
            "Leads may change only team vision's GPUs per user, not its GPUs (now 8); "
            "ask a platform admin.",
            id="lead may not lower gpus",
        ),
        pytest.param(
            False,
            (("gpus", 16),),
            403,
            "not its GPUs (now 8)",
            id="lead may not raise gpus",
        ),
        pytest.param(
            False,
            (("gpus_per_user", 1), ("cpu", 8000)),
            403,
            "not its CPU (now 64 CPUs)",
            id="lead may not touch cpu, even with a lower per-user cap",
        ),
        pytest.param(
            False,
            (("memory", GIB),),
            403,
            "not its memory (now 256 GiB)",
            id="lead may not touch memory",
        ),
        pytest.param(
            False,
            (("storage", GIB),),
            403,
            "not its storage (now unlimited)",
            id="lead may not touch storage",
        ),
        pytest.param(True, (("gpus_per_user", 4),), None, "", id="admin raises per-user cap"),
        pytest.param(True, (("gpus", 16), ("gpus_per_user", 16)), None, "", id="admin grows"),
        pytest.param(True, (("gpus", 1),), None, "", id="admin shrinks below per-user cap"),
        pytest.param(
            True, (("cpu", 1000), ("memory", GIB)), None, "", id="admin sets cpu and memory"
        ),
        pytest.param(
            True,
            (("gpus_per_user", 9),),
            400,
            "Team vision's GPUs per user (9) cannot exceed its GPUs (8).",
            id="per-user cap above the team's gpus",
        ),
    ],
)
def test_check_team_override(
    by_admin: bool, change: Fields, status: int | None, message: str
) -> None:
    team = sample_config().teams["vision"]
    current = Quota(**dict(CURRENT))
    override = QuotaOverride(**dict(change))
    if status is None:
        check_team_override(team=team, current=current, change=override, by_admin=by_admin)
        return
    with pytest.raises(OverrideRefused) as refused:
        check_team_override(team=team, current=current, change=override, by_admin=by_admin)
    assert refused.value.http_status == status
    assert message in refused.value.message
    assert str(refused.value) == refused.value.message


def test_incoherent_change_is_refused_whoever_makes_it() -> None:
    team = sample_config().teams["vision"]
    current = Quota(gpus=8, gpus_per_user=2)
    change = QuotaOverride.model_construct(gpus=2, gpus_per_user=3)
    for by_admin in (True, False):
        with pytest.raises(OverrideRefused) as refused:
            check_team_override(team=team, current=current, change=change, by_admin=by_admin)
        assert refused.value.http_status == (400 if by_admin else 403)
    with pytest.raises(OverrideRefused, match=r"per user \(3\) cannot exceed its GPUs \(2\)"):
        check_team_override(team=team, current=current, change=change, by_admin=True)


# -- who may grant GPUs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "by_admin", "lead_limit", "status", "message"),
    [
        pytest.param(1, True, 2, None, "", id="admin grants one"),
        pytest.param(64, True, 2, None, "", id="admin grants the most"),
        pytest.param(10, True, 0, None, "", id="admin is not held to the lead limit"),
        pytest.param(2, False, 2, None, "", id="lead grants up to the limit"),
        pytest.param(1, False, 2, None, "", id="lead grants below the limit"),
        pytest.param(
            0,
            True,
            2,
            400,
            "A grant to bob in team vision must be 1 to 64 extra GPUs, got 0.",
            id="zero",
        ),
        pytest.param(-1, True, 2, 400, "must be 1 to 64 extra GPUs, got -1", id="negative"),
        pytest.param(65, True, 2, 400, "must be 1 to 64 extra GPUs, got 65", id="too many"),
        pytest.param(65, False, 100, 400, "got 65", id="bounds checked before the lead limit"),
        pytest.param(True, True, 2, 400, "got True", id="a bool is not a count"),
        pytest.param(
            3,
            False,
            2,
            403,
            "Leads may grant bob at most 2 extra GPUs in team vision; granting more than "
            "2 GPUs needs a platform admin.",
            id="lead above the limit",
        ),
        pytest.param(
            2,
            False,
            1,
            403,
            "at most 1 extra GPU in team vision; granting more than 1 GPU needs a platform admin.",
            id="lead limit of one",
        ),
        pytest.param(1, False, 0, 403, "more than 0 GPUs needs a platform admin", id="no limit"),
    ],
)
def test_check_grant(
    extra: int, by_admin: bool, lead_limit: int, status: int | None, message: str
) -> None:
    team = sample_config().teams["vision"]
    if status is None:
        check_grant(
            team=team, user="bob", extra_gpus=extra, by_admin=by_admin, lead_limit=lead_limit
        )
        return
    with pytest.raises(OverrideRefused) as refused:
        check_grant(
            team=team, user="bob", extra_gpus=extra, by_admin=by_admin, lead_limit=lead_limit
        )
    assert refused.value.http_status == status
    assert message in refused.value.message
