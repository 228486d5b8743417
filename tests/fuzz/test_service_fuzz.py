"""Fuzzing the mlteams service's API (hub_ext/service/openapi.yaml) on the team hub, as a
member of team vision with the user's own token (no lead, no admin: the admin API must refuse
every request in words, never fail). Every answer must be documented and none may be a 5xx.

The state-changing endpoints are fuzzed too. The user has no server, so sharing is refused
before any share is made; a promotion needs one of the user's runs with a logged model, which
generated ids never name, so it is refused before any evaluation Job; rollback and serving
requests name a model no test promoted (tests/fuzz/rig.py). The user's pending quota requests
are withdrawn afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis import Case

from devenv.hub import LocalHub
from tests.fuzz.conftest import MIN_REQUESTS, Fuzzer, fuzz_settings
from tests.fuzz.rig import keep_off_champions, stop_server, withdraw_quota_requests
from tests.integration.sharing_helpers import user_token

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(900)]

DESCRIPTION = Path(__file__).resolve().parents[2] / "hub_ext" / "service" / "openapi.yaml"
USER = "v-18"
schema = schemathesis.openapi.from_path(DESCRIPTION)


@pytest.fixture(scope="module")
def service_fuzzer(team_hub: LocalHub) -> Iterator[Fuzzer]:
    token = user_token(team_hub, USER, note="fuzzing the mlteams service")
    stop_server(team_hub, USER)
    fuzzer = Fuzzer(f"{team_hub.url}/services/mlteams", token)
    try:
        yield fuzzer
    finally:
        print(f"mlteams service API: {fuzzer.summary()}")
        withdraw_quota_requests(team_hub, token)
        status, body = team_hub.call("GET", f"/users/{USER}")
        assert status == 200 and not body.get("servers"), body


@schema.parametrize()
@fuzz_settings(max_examples=20)
def test_service_api(case: Case, service_fuzzer: Fuzzer) -> None:
    """No generated request gets a 5xx or an answer the description does not document."""
    keep_off_champions(case)
    service_fuzzer.check(case)


def test_service_requests_counted(service_fuzzer: Fuzzer) -> None:
    """The module sent at least MIN_REQUESTS generated requests to the service."""
    assert service_fuzzer.sent >= MIN_REQUESTS, service_fuzzer.summary()
