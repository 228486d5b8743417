"""The service's database (``hub_ext.service.store``) on sqlite; the same cases run on a real
PostgreSQL in tests/integration/test_store_postgres.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from hub_ext.service.store import GpuSessionRow, NameTaken, Store, StoreUnavailable

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
TABLES = {"promotions", "governed_models", "audit", "alembic_version"}
ADMIN_TABLES = {"quota_overrides", "quota_requests", "gpu_sessions"}
ADMIN_AUDIT_COLUMNS = {"subject", "before", "after", "reason"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'service.sqlite'}")
    opened.migrate()
    yield opened
    opened.close()


def promotion(store: Store, promotion_id: str, **values: Any) -> Any:
    fields = {
        "id": promotion_id,
        "team": "vision",
        "model": "iris",
        "governed_name": "governed.vision.iris",
        "requester": "alice",
        "run_id": "a" * 32,
        "artifact_path": "model",
        "state": "pending_approval",
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }
    return store.add_promotion(**fields)


def audit_row(store: Store, **values: Any) -> Any:
    fields = {
        "at": NOW,
        "actor": "alice",
        "action": "requested",
        "team": "vision",
        "model": "iris",
        "outcome": "evaluating",
        **values,
    }
    return store.append_audit(**fields)


def override(override_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": override_id,
        "team": "vision",
        "reason": "the deadline",
        "created_at": NOW,
        "created_by": "root",
        **values,
    }


def quota_request(store: Store, request_id: str, **values: Any) -> Any:
    fields = {
        "id": request_id,
        "team": "vision",
        "user": "alice",
        "gpus": 2,
        "minutes": 24 * 60,
        "reason": "a sweep",
        "state": "pending",
        "created_at": NOW,
        **values,
    }
    return store.add_quota_request(**fields)


def pod(uid: str, **values: Any) -> dict[str, Any]:
    return {
        "pod_uid": uid,
        "team": "vision",
        "user": "alice",
        "server": "alice",
        "gpus": 1,
        "started_at": NOW,
        **values,
    }


def version(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).all())


def emptied(store: Store) -> Store:
    """The store's database with nothing in it: every migration undone, in the way
    ``Store.migrate`` runs them, and alembic's own table dropped."""
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("hub_ext.service.store") / "migrations")
    )
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        connection.execute(text("DROP TABLE alembic_version"))
    assert inspect(store.engine).get_table_names() == []
    return store


def downgraded(store: Store, revision: str) -> Store:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("hub_ext.service.store") / "migrations")
    )
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    return store


def audit_refuses_changes(store: Store) -> None:
    for statement in ("UPDATE audit SET actor = 'mallory'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError) as info, store.engine.begin() as connection:
            connection.execute(text(statement))
        assert "append-only" in str(info.value)


def test_migrating_again_changes_nothing(store: Store) -> None:
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert TABLES | ADMIN_TABLES <= tables
    assert version(store) == [("0002",)]


def test_an_empty_database_migrates_to_the_newest_revision(store: Store) -> None:
    emptied(store).migrate()
    assert set(inspect(store.engine).get_table_names()) == TABLES | ADMIN_TABLES
    assert version(store) == [("0002",)]
    columns = {c["name"] for c in inspect(store.engine).get_columns("audit")}
    assert ADMIN_AUDIT_COLUMNS <= columns
    audit_row(store, subject="alice")
    audit_refuses_changes(store)
    assert [e.subject for e in store.audit()] == ["alice"]


def test_a_database_at_0001_keeps_its_audit_and_its_triggers_through_0002(store: Store) -> None:
    emptied(store).migrate("0001")
    assert version(store) == [("0001",)]
    assert set(inspect(store.engine).get_table_names()) == TABLES
    gates = [{"gate": "accuracy.min", "passed": True}]
    audit_row(store, action="requested", promotion_id="1" * 32)
    audit_row(store, action="promoted", promotion_id="1" * 32, to_version=3, gate_results=gates)

    store.migrate()
    assert version(store) == [("0002",)]
    assert ADMIN_TABLES <= set(inspect(store.engine).get_table_names())
    entries = store.audit()
    assert [(e.action, e.to_version, e.gate_results) for e in entries] == [
        ("promoted", 3, gates),
        ("requested", None, None),
    ]
    assert all((e.subject, e.before, e.after, e.reason) == (None,) * 4 for e in entries)
    audit_refuses_changes(store)
    assert store.audit() == entries

    # and back: the columns go in place too, the rows and the triggers stay
    audit_row(store, action="quota-override", model="", subject="vision", after={"gpus": 4})
    downgraded(store, "0001")
    assert version(store) == [("0001",)]
    assert set(inspect(store.engine).get_table_names()) == TABLES
    columns = {c["name"] for c in inspect(store.engine).get_columns("audit")}
    assert not ADMIN_AUDIT_COLUMNS & columns
    audit_refuses_changes(store)
    with store.engine.connect() as connection:
        actions = connection.execute(text("SELECT action FROM audit ORDER BY id")).scalars()
        assert list(actions) == ["requested", "promoted", "quota-override"]


def test_a_promotion_comes_back_as_written_with_its_zone(store: Store) -> None:
    gates = [{"gate": "accuracy.min", "passed": True, "value": 0.97}]
    row = promotion(store, "1" * 32, gate_results=gates, measured={"accuracy": 0.97})
    assert row.created_at == NOW and row.created_at.tzinfo is not None
    assert row.gate_results == gates and row.measured == {"accuracy": 0.97}
    assert store.promotion("1" * 32) == row
    assert store.promotion("2" * 32) is None


def test_listing_filters_and_puts_the_newest_first(store: Store) -> None:
    promotion(store, "1" * 32)
    promotion(store, "2" * 32, created_at=NOW + timedelta(minutes=1), state="promoted")
    promotion(store, "3" * 32, team="nlp", governed_name="governed.nlp.iris")
    assert [r.id for r in store.promotions(team="vision")] == ["2" * 32, "1" * 32]
    assert [r.id for r in store.promotions(state="promoted")] == ["2" * 32]
    assert [r.id for r in store.promotions(team="nlp", model="iris")] == ["3" * 32]


def test_a_transition_happens_only_from_the_expected_state(store: Store) -> None:
    promotion(store, "1" * 32)
    moved = store.transition(
        "1" * 32, from_states={"pending_approval"}, to_state="promoted", version=3, approver="lena"
    )
    assert moved is not None and (moved.state, moved.version, moved.approver) == (
        "promoted",
        3,
        "lena",
    )
    assert store.transition("1" * 32, from_states={"pending_approval"}, to_state="rejected") is None
    assert store.promotion("1" * 32).state == "promoted"  # type: ignore[union-attr]


def test_two_approvers_racing_only_one_wins(store: Store) -> None:
    promotion(store, "1" * 32)
    start = threading.Barrier(8)
    won: list[str] = []

    def approve(name: str) -> None:
        start.wait()
        if store.transition(
            "1" * 32, from_states={"pending_approval"}, to_state="approving", approver=name
        ):
            won.append(name)

    threads = [threading.Thread(target=approve, args=(f"lead-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert store.promotion("1" * 32).approver == won[0]  # type: ignore[union-attr]


def test_a_transaction_writes_both_rows_or_neither(store: Store) -> None:
    promotion(store, "1" * 32)
    with pytest.raises(RuntimeError), store.in_transaction():
        store.transition("1" * 32, from_states={"pending_approval"}, to_state="promoted")
        audit_row(store, action="promoted", promotion_id="1" * 32)
        raise RuntimeError("the alias could not be moved")
    assert store.promotion("1" * 32).state == "pending_approval"  # type: ignore[union-attr]
    assert store.audit() == []
    with store.in_transaction():
        store.transition("1" * 32, from_states={"pending_approval"}, to_state="promoted")
        audit_row(store, action="promoted", promotion_id="1" * 32)
    assert [e.action for e in store.audit(promotion_id="1" * 32)] == ["promoted"]


def test_the_audit_is_newest_first_and_filtered(store: Store) -> None:
    audit_row(store, action="requested")
    audit_row(store, action="promoted", to_version=1, gate_results=[{"gate": "g"}])
    audit_row(store, action="requested", team="nlp")
    entries = store.audit(team="vision")
    assert [e.action for e in entries] == ["promoted", "requested"]
    assert entries[0].to_version == 1 and entries[0].gate_results == [{"gate": "g"}]
    assert entries[0].at == NOW and entries[0].id > entries[1].id


@pytest.mark.parametrize("statement", ["UPDATE audit SET actor = 'mallory'", "DELETE FROM audit"])
def test_audit_rows_cannot_be_changed_or_removed_even_with_sql(
    store: Store, statement: str
) -> None:
    audit_row(store)
    with pytest.raises(DBAPIError) as info, store.engine.begin() as connection:
        connection.execute(text(statement))
    assert "append-only" in str(info.value)
    assert [e.actor for e in store.audit()] == ["alice"]


def test_a_governed_model_is_created_once(store: Store) -> None:
    made = store.add_governed_model(
        name="governed.vision.iris", team="vision", model="iris", created_at=NOW, created_by="a"
    )
    assert store.governed_model("vision", "iris") == made
    with pytest.raises(NameTaken):
        store.add_governed_model(
            name="governed.vision.iris",
            team="vision",
            model="iris",
            created_at=NOW,
            created_by="b",
        )
    assert store.governed_model("vision", "other") is None


def test_unknown_fields_are_refused(store: Store) -> None:
    with pytest.raises(TypeError, match="no column colour"):
        promotion(store, "1" * 32, colour="red")
    with pytest.raises(TypeError, match="no column"):
        audit_row(store, approved=True)


def test_a_database_that_does_not_answer_is_store_unavailable(tmp_path: Path) -> None:
    missing = Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.sqlite'}")
    with pytest.raises(StoreUnavailable):
        missing.migrate()
    with pytest.raises(StoreUnavailable):
        missing.promotions()


def test_replacing_a_teams_override_revokes_the_active_one_and_returns_it(store: Store) -> None:
    previous, first = store.replace_team_override(
        team="vision", values=override("1" * 32, gpus=8, cpu=64_000), now=NOW, actor="root"
    )
    assert previous is None
    assert (first.team, first.user, first.gpus, first.cpu, first.memory) == (
        "vision",
        None,
        8,
        64_000,
        None,
    )
    store.add_override(**override("u" * 32, user="alice", extra_gpus=2))
    store.replace_team_override(
        team="nlp", values=override("n" * 32, team="nlp"), now=NOW, actor="x"
    )

    later = NOW + MINUTE
    previous, second = store.replace_team_override(
        team="vision",
        values=override("2" * 32, gpus=16, created_at=later, created_by="lena"),
        now=later,
        actor="lena",
    )
    assert previous is not None and previous.id == "1" * 32
    assert (previous.revoked_at, previous.revoked_by) == (later, "lena")
    assert store.override("1" * 32) == previous
    assert second == store.override("2" * 32) and second.revoked_at is None and second.gpus == 16
    # the user's grant and the other team's override are not the team's override
    assert [o.id for o in store.overrides(active_at=later)] == ["2" * 32, "n" * 32, "u" * 32]


def test_every_active_team_override_is_replaced_and_an_expired_one_is_not_active(
    store: Store,
) -> None:
    store.add_override(**override("1" * 32, expires_at=NOW + 10 * MINUTE))
    store.add_override(**override("2" * 32, created_at=NOW + MINUTE))
    store.add_override(**override("3" * 32, created_at=NOW + 2 * MINUTE, expires_at=NOW + MINUTE))
    later = NOW + 5 * MINUTE
    previous, new = store.replace_team_override(
        team="vision", values=override("4" * 32, created_at=later), now=later, actor="root"
    )
    assert previous is not None and previous.id == "2" * 32  # the newest that was active
    assert new == store.override("4" * 32) and new.revoked_at is None
    assert [o.id for o in store.overrides(active_at=later)] == ["4" * 32]
    assert store.override("1" * 32).revoked_by == "root"  # type: ignore[union-attr]
    # expired before, so left as it was
    assert store.override("3" * 32).revoked_at is None  # type: ignore[union-attr]

    previous, _ = store.replace_team_override(
        team="vision",
        values=override("5" * 32, created_at=later, expires_at=later + MINUTE),
        now=later,
        actor="root",
    )
    assert previous is not None and previous.id == "4" * 32
    previous, _ = store.replace_team_override(
        team="vision", values=override("6" * 32), now=later + 2 * MINUTE, actor="root"
    )
    assert previous is None  # "5" had expired
    with pytest.raises(ValueError):
        store.replace_team_override(
            team="vision", values=override("7" * 32, user="alice"), now=later, actor="root"
        )


def test_replacing_a_teams_override_joins_the_transaction_around_it(store: Store) -> None:
    store.replace_team_override(team="vision", values=override("1" * 32), now=NOW, actor="root")
    with pytest.raises(RuntimeError), store.in_transaction():
        store.replace_team_override(
            team="vision", values=override("2" * 32), now=NOW + MINUTE, actor="root"
        )
        audit_row(store, action="quota-override", model="", subject="vision")
        raise RuntimeError("the audit could not be written")
    assert [o.id for o in store.overrides(active_at=NOW + MINUTE)] == ["1" * 32]
    assert store.override("2" * 32) is None and store.audit() == []


def test_admins_replacing_a_teams_override_at_once_leave_one_active(store: Store) -> None:
    store.replace_team_override(team="vision", values=override("0" * 32), now=NOW, actor="root")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def replace(n: int) -> None:
        start.wait()
        try:
            store.replace_team_override(
                team="vision", values=override(str(n + 1) * 32), now=NOW, actor=f"lead-{n}"
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replace, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.overrides(team="vision")) == 9
    assert len(store.overrides(team="vision", active_at=NOW)) == 1


def test_an_override_is_revoked_once(store: Store) -> None:
    store.add_override(**override("1" * 32, user="alice", extra_gpus=2))
    revoked = store.revoke_override("1" * 32, by="lena", now=NOW + MINUTE)
    assert revoked is not None and (revoked.revoked_at, revoked.revoked_by) == (
        NOW + MINUTE,
        "lena",
    )
    assert store.revoke_override("1" * 32, by="root", now=NOW + 2 * MINUTE) is None
    assert store.override("1" * 32) == revoked
    assert store.revoke_override("9" * 32, by="root", now=NOW) is None
    assert store.override("9" * 32) is None


def test_overrides_by_the_time_they_are_active_team_and_user(store: Store) -> None:
    hour = 60 * MINUTE
    store.add_override(**override("a" * 32, gpus=8, expires_at=NOW + hour))
    store.add_override(**override("b" * 32, user="alice", extra_gpus=2, created_at=NOW + MINUTE))
    store.add_override(**override("c" * 32, user="bob", extra_gpus=1, created_at=NOW + 2 * MINUTE))
    store.add_override(
        **override("d" * 32, team="nlp", created_at=NOW + 3 * MINUTE, expires_at=NOW + hour / 6)
    )
    store.revoke_override("c" * 32, by="lena", now=NOW + hour / 2)

    def ids(**filters: Any) -> list[str]:
        return [o.id[0] for o in store.overrides(**filters)]

    assert ids() == ["d", "c", "b", "a"]
    assert ids(active_at=NOW + 5 * MINUTE) == ["d", "c", "b", "a"]
    assert ids(active_at=NOW + hour / 6) == ["c", "b", "a"]  # "d" expires then
    assert ids(active_at=NOW + hour / 2) == ["b", "a"]  # "c" is revoked then
    assert ids(active_at=NOW + 2 * hour) == ["b"]
    assert ids(active_at=NOW + MINUTE / 2) == ["a"]  # the others were not made yet
    assert ids(team="vision", active_at=NOW + 5 * MINUTE) == ["c", "b", "a"]
    assert ids(team="vision", user="alice") == ["b"]
    assert ids(user="bob", active_at=NOW + hour) == []
    assert ids(limit=2) == ["d", "c"]
    row = store.override("a" * 32)
    assert row is not None and row.active_at(NOW) and not row.active_at(NOW + hour)


def test_a_quota_request_is_decided_only_from_the_expected_state(store: Store) -> None:
    made = quota_request(store, "1" * 32)
    assert store.quota_request("1" * 32) == made and made.created_at == NOW
    decided = store.decide_quota_request(
        "1" * 32,
        to_state="approved",
        decided_at=NOW + MINUTE,
        decided_by="lena",
        override_id="o" * 32,
    )
    assert decided is not None
    assert (decided.state, decided.decided_by, decided.override_id) == (
        "approved",
        "lena",
        "o" * 32,
    )
    assert store.decide_quota_request("1" * 32, to_state="withdrawn") is None
    assert store.decide_quota_request("9" * 32, to_state="approved") is None
    assert store.quota_request("1" * 32) == decided
    with pytest.raises(TypeError, match="no column colour"):
        store.decide_quota_request("1" * 32, from_state="approved", to_state="x", colour="red")


def test_quota_requests_are_newest_first_and_filtered(store: Store) -> None:
    quota_request(store, "1" * 32)
    quota_request(store, "2" * 32, user="bob", created_at=NOW + MINUTE, state="rejected")
    quota_request(store, "3" * 32, team="nlp", created_at=NOW + 2 * MINUTE)
    assert [r.id[0] for r in store.quota_requests()] == ["3", "2", "1"]
    assert [r.id[0] for r in store.quota_requests(team="vision")] == ["2", "1"]
    assert [r.id[0] for r in store.quota_requests(state="pending")] == ["3", "1"]
    assert [r.id[0] for r in store.quota_requests(team="vision", user="bob")] == ["2"]
    assert [r.id[0] for r in store.quota_requests(limit=1)] == ["3"]


def test_two_admins_deciding_a_quota_request_at_once_only_one_wins(store: Store) -> None:
    quota_request(store, "1" * 32)
    start = threading.Barrier(8)
    won: list[str] = []

    def decide(name: str, state: str) -> None:
        start.wait()
        if store.decide_quota_request("1" * 32, to_state=state, decided_by=name):
            won.append(name)

    threads = [
        threading.Thread(target=decide, args=(f"lead-{i}", ("approved", "rejected")[i % 2]))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    decided = store.quota_request("1" * 32)
    assert decided is not None and decided.decided_by == won[0]
    assert decided.state == ("approved", "rejected")[int(won[0].split("-")[1]) % 2]


def test_gpu_sessions_open_while_seen_and_end_when_last_seen(store: Store) -> None:
    t1, t2, t3, t4 = (NOW + n * MINUTE for n in range(1, 5))
    store.record_sessions([pod("a"), pod("b", team="nlp", user="bob", gpus=4)], now=NOW)
    assert store.gpu_sessions(since=NOW) == [
        GpuSessionRow("a", "vision", "alice", "alice", 1, NOW, NOW, None),
        GpuSessionRow("b", "nlp", "bob", "alice", 4, NOW, NOW, None),
    ]

    store.record_sessions([pod("a"), pod("c", started_at=t1)], now=t1)
    found = {s.pod_uid: s for s in store.gpu_sessions(since=NOW)}
    assert (found["a"].last_seen_at, found["a"].ended_at) == (t1, None)
    assert (found["b"].last_seen_at, found["b"].ended_at) == (NOW, NOW)  # gone: ended
    assert (found["c"].started_at, found["c"].last_seen_at, found["c"].ended_at) == (t1, t1, None)

    store.record_sessions([pod("c", started_at=t1)], now=t2)
    found = {s.pod_uid: s for s in store.gpu_sessions(since=NOW)}
    assert (found["a"].last_seen_at, found["a"].ended_at) == (t1, t1)

    # "a" again, uid and all: its session stays ended as it was (see record_sessions)
    store.record_sessions([pod("a"), pod("c", started_at=t1)], now=t3)
    found = {s.pod_uid: s for s in store.gpu_sessions(since=NOW)}
    assert (found["a"].last_seen_at, found["a"].ended_at) == (t1, t1)
    assert (found["c"].last_seen_at, found["c"].ended_at) == (t3, None)

    assert [s.pod_uid for s in store.gpu_sessions(since=t1)] == ["a", "c"]
    assert [s.pod_uid for s in store.gpu_sessions(since=t2)] == ["c"]
    assert [s.pod_uid for s in store.gpu_sessions(since=NOW, team="nlp")] == ["b"]

    store.record_sessions([], now=t4)
    assert [(s.pod_uid, s.ended_at) for s in store.gpu_sessions(since=NOW)] == [
        ("a", t1),
        ("b", NOW),
        ("c", t3),
    ]
    with pytest.raises(TypeError, match="no column colour"):
        store.record_sessions([pod("d", colour="red")], now=t4)


def test_thousands_of_gpu_pods_are_recorded_in_one_sample(store: Store) -> None:
    uids = [f"{n:05d}" for n in range(5_000)]
    store.record_sessions((pod(uid, user=f"u{uid}") for uid in uids), now=NOW)
    store.record_sessions([pod(uid) for uid in uids[::2]], now=NOW + MINUTE)
    found = {s.pod_uid: s for s in store.gpu_sessions(since=NOW)}
    assert len(found) == 5_000
    assert {uid for uid, s in found.items() if s.ended_at is None} == set(uids[::2])
    assert all(s.last_seen_at == NOW + MINUTE for s in found.values() if s.ended_at is None)
    assert all(s.ended_at == NOW for s in found.values() if s.ended_at is not None)
    assert found["00001"].user == "u00001"


def test_the_audit_filters_by_actor_action_and_subject_and_pages_by_id(store: Store) -> None:
    change = {"gpus": 8, "gpus_per_user": None, "nodes": ["a", "b"]}
    made = audit_row(
        store,
        actor="root",
        action="quota-override",
        team="vision",
        model="",
        outcome="done",
        subject="vision",
        before={},
        after=change,
        reason='the deadline, "today"',
    )
    assert made.after == change and made.reason == 'the deadline, "today"'
    audit_row(store, actor="root", action="server-stopped", model="", subject="alice")
    audit_row(store, actor="lena", action="quota-override", model="", subject="alice")
    audit_row(store, actor="alice", action="requested")

    (entry,) = store.audit(actor="root", action="quota-override")
    assert entry == made
    assert (entry.subject, entry.before, entry.after) == ("vision", {}, change)
    assert [e.action for e in store.audit(subject="alice")] == ["quota-override", "server-stopped"]
    assert [e.actor for e in store.audit(action="quota-override")] == ["lena", "root"]
    assert [e.actor for e in store.audit(action="quota-override", actor="alice")] == []

    everything = store.audit()
    assert [e.actor for e in everything] == ["alice", "lena", "root", "root"]
    first = store.audit(limit=3)
    rest = store.audit(limit=3, before_id=first[-1].id)
    assert first + rest == everything and rest == [made]
    assert store.audit(before_id=made.id) == []
    assert [e.actor for e in store.audit(subject="alice", before_id=everything[1].id)] == ["root"]
    # the first four parameters are still taken by position
    assert store.audit("vision", "", None, 1) == [everything[1]]
