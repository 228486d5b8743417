"""The service's database (``hub_ext.service.store``) on sqlite; the same cases run on a real
PostgreSQL in tests/integration/test_store_postgres.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from hub_ext.service.store import NameTaken, Store, StoreUnavailable

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


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


def test_migrating_again_changes_nothing(store: Store) -> None:
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"promotions", "governed_models", "audit", "alembic_version"} <= tables
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0001",)
        ]


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
