"""The ``mlteams`` service's database locked or gone, on the rig's team hub (sqlite in the hub's
state folder, as ``MLTEAMS_SERVICE_DB_URL`` defaults to).

Locked: the test holds an exclusive write lock on the database file (``BEGIN EXCLUSIVE``), as a
long migration or a stuck backup would. Gone: the file is moved away and a folder stands in its
place, as when the hub's volume loses it. In both cases the admin pages, the admin's quota
override, a member's quota request and the promotion list answer 503 with a sentence a person
understands (no traceback), and once the fault is cleared the store holds exactly the actions
that were reported done: none of those refused, and the same override and request once they
succeed.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devenv.hub import LocalHub
from tests.integration.sharing_helpers import SERVICE_API, as_user, signed_in, user_token

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

ADMIN_API = f"{SERVICE_API}/admin"
PAGES = "/services/mlteams-admin/"
DOWN = "database is not answering"


@pytest.fixture(scope="module")
def tokens(team_hub: LocalHub) -> dict[str, str]:
    return {user: user_token(team_hub, user, "database fault test") for user in ("admin", "v-dora")}


def database(hub: LocalHub) -> Path:
    path = hub.state_dir / "mlteams-service.sqlite"
    assert path.is_file(), path
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive write lock on the database, held by this process."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        connection.rollback()
        connection.close()


@contextmanager
def gone(path: Path) -> Iterator[None]:
    """The database file moved away and a folder in its place; put back afterwards."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        path.mkdir()
        yield
    finally:
        if path.is_dir():
            path.rmdir()
        aside.rename(path)


def actions(hub: LocalHub, tokens: dict[str, str], reason: str) -> dict[str, Callable[[], Any]]:
    """The store-writing actions and the reads of the service, each as a person would call it."""
    override = {"gpus": 6, "hours": 1, "reason": reason}
    request = {"team": "vision", "gpus": 1, "hours": 1, "reason": reason}

    def page() -> tuple[int, str]:
        with signed_in(hub, "v-lead") as lead:
            answer = lead.get(f"{hub.url}{PAGES}", timeout=120)
            return answer.status_code, answer.text

    return {
        "override": lambda: as_user(
            hub, tokens["admin"], "POST", f"{ADMIN_API}/teams/vision/override", override
        ),
        "quota request": lambda: as_user(
            hub, tokens["v-dora"], "POST", f"{SERVICE_API}/quota-requests", request
        ),
        "promotions": lambda: as_user(hub, tokens["v-dora"], "GET", f"{SERVICE_API}/promotions"),
        "admin page": page,
    }


def stored(hub: LocalHub, tokens: dict[str, str], reason: str) -> dict[str, list[dict[str, Any]]]:
    """The overrides and quota requests in the store that carry ``reason``."""
    status, overrides = as_user(hub, tokens["admin"], "GET", f"{ADMIN_API}/overrides")
    assert status == 200, overrides
    status, requests = as_user(hub, tokens["v-dora"], "GET", f"{SERVICE_API}/quota-requests")
    assert status == 200, requests
    return {
        "overrides": [o for o in overrides["overrides"] if o.get("reason") == reason],
        "requests": [r for r in requests["requests"] if r.get("reason") == reason],
    }


@pytest.mark.parametrize("fault", [locked, gone], ids=["locked", "gone"])
def test_the_service_database_down_answers_503_and_stores_only_what_it_reported(
    team_hub: LocalHub, tokens: dict[str, str], fault: Callable[[Path], Any]
) -> None:
    reason = f"database fault {uuid.uuid4().hex[:8]}"
    calls = actions(team_hub, tokens, reason)
    with fault(database(team_hub)), ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        answers = {name: future.result() for name, future in futures.items()}

    for name, (status, body) in answers.items():
        assert status == 503, (name, status, body)
        text = body if isinstance(body, str) else body["message"]
        assert DOWN in text, (name, text[:500])
        assert "Traceback" not in text, (name, text[:500])
    assert stored(team_hub, tokens, reason) == {"overrides": [], "requests": []}

    # the same actions once the database is back: each done once, and stored once
    status, override = calls["override"]()
    assert status == 201, override
    try:
        status, request = calls["quota request"]()
        assert status == 201, request
        found = stored(team_hub, tokens, reason)
        assert [o["id"] for o in found["overrides"]] == [override["override"]["id"]]
        assert [r["id"] for r in found["requests"]] == [request["id"]]
        status, withdrawn = as_user(
            team_hub, tokens["v-dora"], "DELETE", f"{SERVICE_API}/quota-requests/{request['id']}"
        )
        assert status == 200, withdrawn
    finally:
        revoke = f"{ADMIN_API}/overrides/{override['override']['id']}/revoke"
        as_user(team_hub, tokens["admin"], "POST", revoke, {"reason": "fault test over"})
