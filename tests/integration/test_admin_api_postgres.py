"""The admin API's cases of tests/unit/service/test_admin_api.py with the service's database on a
real PostgreSQL (Debian's server, started by the ``postgres`` fixture), migrated from an empty
database for each test."""

from __future__ import annotations

import pytest

from hub_ext.service.store import Store
from tests.unit.service import test_admin_api
from tests.unit.service.test_admin_api import *  # noqa: F403  (the same cases, on PostgreSQL)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def store(postgres_store: Store) -> Store:
    """The cases' ``store``, here on PostgreSQL (``postgres_store`` in tests/conftest.py)."""
    return postgres_store


def test_every_sqlite_case_runs_here_too() -> None:
    cases = {name for name in vars(test_admin_api) if name.startswith("test_")}
    here = {name for name in globals() if name.startswith("test_")}
    assert cases <= here
