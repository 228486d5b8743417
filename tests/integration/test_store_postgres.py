"""The service's database cases of tests/unit/service/test_store.py, on a real PostgreSQL
(Debian's server, started by the ``postgres`` fixture): migrations, compare-and-set transitions
under a race, transactions, and the triggers that keep the audit append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from devenv.postgres import LocalPostgres
from hub_ext.service.store import Store
from tests.unit.service import test_store
from tests.unit.service.test_store import *  # noqa: F403  (the same cases, here on PostgreSQL)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

del test_a_database_that_does_not_answer_is_store_unavailable  # noqa: F821  (sqlite-only)


@pytest.fixture
def store(postgres_store: Store) -> Store:
    """The cases' ``store``, here on PostgreSQL (``postgres_store`` in tests/conftest.py)."""
    return postgres_store


def test_every_sqlite_case_runs_here_too() -> None:
    cases = {name for name in vars(test_store) if name.startswith("test_")}
    here = {name for name in globals() if name.startswith("test_")}
    assert cases - here == {"test_a_database_that_does_not_answer_is_store_unavailable"}


def test_two_services_migrating_at_once_both_succeed(postgres: LocalPostgres) -> None:
    import threading

    stores = [Store(postgres.url) for _ in range(2)]
    with stores[0].engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    errors: list[BaseException] = []

    def migrate(store: Store) -> None:
        try:
            store.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with stores[0].engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0002",)
        ]
    for store in stores:
        store.close()
