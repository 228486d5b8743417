"""Fuzzing the hub's spawn endpoint with `user_options` (hub_ext/spawner/user_options.openapi.yaml)
on the team hub, as a member of team vision with the user's own token. The description is
published with plain names; here it gets the rig's teams and profiles as `enum` lists, so that
valid-looking options (a team and profile that exist, another team's profile, a fixed
profile's GPU count) come up often and reach admission, not only the name checks.

A spawn the hub accepts really starts a pod (about 12 s on the rig until it is stopped again):
the server is stopped, and the test waits until it is gone, before the next request. Options
that the spawner's own validation (`validate_user_options`, the same rules the hub applies)
accepts are sent once per outcome (team, profile, GPUs): a later example with the same outcome
is rejected by Hypothesis before it is sent, so the requests go to the refusals, where the
fuzzing finds something. The hub exits after 5 spawn errors in a row
(`Spawner.consecutive_failure_limit`), so a refusal counted as an error would show here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import assume
from schemathesis import Case
from schemathesis.core import NOT_SET

from devenv.hub import LocalHub
from hub_ext.policy import UserOptionsError, validate_user_options
from hub_ext.policy.config import MLTeamsConfig, load_config
from tests.conftest import TEAM_CONFIG, TEAM_USERS
from tests.fuzz.conftest import MIN_REQUESTS, Fuzzer, fuzz_settings
from tests.fuzz.rig import stop_server
from tests.integration.sharing_helpers import user_token

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(900)]

DESCRIPTION = (
    Path(__file__).resolve().parents[2] / "hub_ext" / "spawner" / "user_options.openapi.yaml"
)
USER = "v-19"
GROUPS = sorted(group for group, users in TEAM_USERS.items() if USER in users)
CONFIG: MLTeamsConfig = load_config(yaml.safe_load(TEAM_CONFIG.read_text()))
# the outcomes (team, profile, GPUs) of the options already accepted in this module
ACCEPTED: set[tuple[str, str, int | None]] = set()


def rig_description() -> dict[str, Any]:
    """The published description with the rig's team and profile names as enums."""
    description = yaml.safe_load(DESCRIPTION.read_text())
    config = yaml.safe_load(TEAM_CONFIG.read_text())
    options = description["components"]["schemas"]["UserOptions"]["properties"]
    options["team"] = {"type": "string", "enum": sorted(config["teams"])}
    options["profile"] = {"type": "string", "enum": sorted(config["profiles"])}
    return description


def rig_config() -> schemathesis.Config:
    """Schemathesis' probes of methods the description does not list, less PATCH: JupyterHub
    serves GET, DELETE and PATCH on these paths itself (not described here), and JupyterHub
    6.1.1's PATCH answers 500 to a body with unexpected fields (its error message joins a set
    with ``set.join``), a fault of JupyterHub's own handler that no spawner setting reaches."""
    config = schemathesis.Config()
    coverage = config.projects.default.phases.coverage
    coverage.unexpected_methods = coverage.unexpected_methods - {"patch"}
    return config


schema = schemathesis.openapi.from_dict(rig_description(), config=rig_config())


@pytest.fixture(scope="module")
def spawn_fuzzer(team_hub: LocalHub) -> Iterator[Fuzzer]:
    token = user_token(team_hub, USER, note="fuzzing spawn options")
    stop_server(team_hub, USER)
    fuzzer = Fuzzer(f"{team_hub.url}/hub/api", token)
    try:
        yield fuzzer
    finally:
        print(f"spawn endpoint: {fuzzer.summary()}")
        stop_server(team_hub, USER)


@schema.parametrize()
@fuzz_settings(max_examples=450)
def test_spawn_options(case: Case, spawn_fuzzer: Fuzzer, team_hub: LocalHub) -> None:
    """No generated spawn request gets a 5xx or an answer the description does not document;
    an accepted spawn is stopped before the next one."""
    assert case.path_parameters is not None
    case.path_parameters["name"] = USER
    if not case.path_parameters.get("server_name"):
        outcome = accepted_outcome(case)
        assume(outcome is None or outcome not in ACCEPTED)
        if outcome is not None:
            ACCEPTED.add(outcome)
    try:
        spawn_fuzzer.check(case)
    finally:
        stop_server(team_hub, USER)


def accepted_outcome(case: Case) -> tuple[str, str, int | None] | None:
    """What the spawner would start for this request's options (None: it refuses them), with
    JupyterHub 6's reading of the body: the options themselves, or its `user_options` when the
    body has `user_options` or `display_name`."""
    if case.method.upper() != "POST":
        return None
    options: Any = None
    if isinstance(case.body, dict):
        options = case.body
        if "user_options" in options or "display_name" in options:
            options = options.get("user_options")
    elif case.body not in (NOT_SET, None):
        return None  # JupyterHub refuses a body that is not an object
    try:
        valid = validate_user_options(CONFIG, options, groups=GROUPS)
    except UserOptionsError:
        return None
    return valid.team, valid.profile.name, valid.gpus


def test_spawn_requests_counted(spawn_fuzzer: Fuzzer) -> None:
    """The module sent at least MIN_REQUESTS generated spawn requests, some of them accepted."""
    assert spawn_fuzzer.sent >= MIN_REQUESTS, spawn_fuzzer.summary()
    assert spawn_fuzzer.statuses.get(202, 0) + spawn_fuzzer.statuses.get(201, 0) > 0
