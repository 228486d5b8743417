"""Fuzzing the server extension's `/mlteams/` API (server_ext/server/openapi.yaml) on a real
user's server: a member of team vision starts a CPU server on the team hub, and every request
goes through the hub's proxy with the user's own token, as the side panel's would with a
token. Every answer must be documented and none may be a 5xx.

The state-changing endpoints are fuzzed too: `/promote`, `/runs/{run_id}/end`, the quota
requests, the environment reset and project builds (a fresh home has no projects and nothing
installed). A promotion needs one of the user's runs with a logged model, which generated ids
never name, so the service refuses it before any evaluation Job; rollback and serving requests
name a model no test promoted (tests/fuzz/rig.py). The user's pending quota requests are
withdrawn and the server stopped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis import Case

from devenv.hub import LocalHub
from tests.fuzz.conftest import MIN_REQUESTS, Fuzzer, fuzz_settings
from tests.fuzz.rig import keep_off_champions, start_server, stop_server, withdraw_quota_requests
from tests.integration.sharing_helpers import user_token

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(900)]

DESCRIPTION = Path(__file__).resolve().parents[2] / "server_ext" / "server" / "openapi.yaml"
USER = "v-16"
schema = schemathesis.openapi.from_path(DESCRIPTION)


@pytest.fixture(scope="module")
def server_fuzzer(team_hub: LocalHub) -> Iterator[Fuzzer]:
    token = user_token(team_hub, USER, note="fuzzing the server extension")
    start_server(team_hub, USER, {"team": "vision", "profile": "cpu"})
    fuzzer = Fuzzer(f"{team_hub.url}/user/{USER}/mlteams", token)
    try:
        yield fuzzer
    finally:
        print(f"server extension API: {fuzzer.summary()}")
        try:
            withdraw_quota_requests(team_hub, token)
        finally:
            stop_server(team_hub, USER)


@schema.parametrize()
@fuzz_settings(max_examples=26)
def test_server_extension_api(case: Case, server_fuzzer: Fuzzer) -> None:
    """No generated request gets a 5xx or an answer the description does not document."""
    keep_off_champions(case)
    server_fuzzer.check(case)


def test_server_extension_requests_counted(server_fuzzer: Fuzzer) -> None:
    """The module sent at least MIN_REQUESTS generated requests to the server extension."""
    assert server_fuzzer.sent >= MIN_REQUESTS, server_fuzzer.summary()
