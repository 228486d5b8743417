"""The team hub as the fuzzing modules use it: a user's server started and stopped, what a user
left in the mlteams service taken back, and the path parameters that would do real work on
other tests' models kept away from them."""

from __future__ import annotations

from schemathesis import Case

from devenv.hub import LocalHub
from tests.integration.sharing_helpers import SERVICE_API, as_user
from tests.integration.team_hub_helpers import wait_server_sync

# rollback and serving move a team's champion: the model in those paths always gets this
# prefix, so a generated name can never be a model another test promoted (the service then
# refuses early: no governed version, no champion)
UNPROMOTED_PREFIX = "fuzz-unpromoted-"
CHAMPION_PATHS = ("/rollback", "/serving")


def start_server(hub: LocalHub, user: str, options: dict[str, str]) -> None:
    status, body = hub.call("POST", f"/users/{user}/server", options)
    assert status in (201, 202), (status, body)
    wait_server_sync(hub, user, ready=True)


def stop_server(hub: LocalHub, user: str) -> None:
    """Stop ``user``'s default server if it runs or is starting, and wait until it is gone."""
    status, model = hub.call("GET", f"/users/{user}")
    assert status == 200, model
    if "" not in (model.get("servers") or {}):
        return
    status, body = hub.call("DELETE", f"/users/{user}/server")
    assert status in (202, 204, 400), (status, body)
    wait_server_sync(hub, user, ready=False)


def withdraw_quota_requests(hub: LocalHub, token: str) -> None:
    """Withdraw the user's pending requests for more GPUs (made by the fuzzing)."""
    status, body = as_user(hub, token, "GET", f"{SERVICE_API}/quota-requests")
    assert status == 200, (status, body)
    for request in body["requests"]:
        if request["state"] == "pending":
            status, body = as_user(
                hub, token, "DELETE", f"{SERVICE_API}/quota-requests/{request['id']}"
            )
            assert status == 200, (status, body)


def keep_off_champions(case: Case) -> None:
    """A rollback or serving request names a model no test promoted (see UNPROMOTED_PREFIX)."""
    parameters = case.path_parameters
    if (
        case.method.upper() == "POST"
        and case.path.endswith(CHAMPION_PATHS)
        and parameters
        and isinstance(parameters.get("model"), str)
    ):
        parameters["model"] = UNPROMOTED_PREFIX + parameters["model"]
