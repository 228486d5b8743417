"""No secret value of the rig in any pod spec, any HTTP response the suite received, any page the
browser tests saw, or any log file of the session.

Runs last (``tests/security`` is the last of the test paths, this module the last of the
folder), over what the whole session collected: the apiserver's audit log of every pod it
received, the response recorder's file (``tests/security/collector.py``) and every ``*.log``
below the session's temporary folder (the rig's processes, the hubs, the pods' containers).

The secrets are those an operator of the rig can read: the object store's root and team keys,
the MLflow admin's password, the hubs' test and proxy tokens and cookie secrets, every secret-named
variable in the environment of every process the session started (the hubs, the mlteams
service with its admin pages' token and its own hub token, the OAuth client secrets, the
servers' own tokens), the tokens the hub handed out during the session, and every server token
the apiserver ever received in a pod.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.mlflow_server import MLflowServer
from tests.integration.sharing_helpers import SERVICE_API, as_user, user_token
from tests.integration.team_data import TeamData
from tests.security.collector import Collector
from tests.security.rig import rig_processes
from tests.security.scanner import (
    Finding,
    Source,
    audit_pods,
    log_sources,
    pod_sources,
    scan,
    too_short,
)

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.timeout(300)]

NOT_SECRET = {"MLTEAMS_DEMO_PASSWORD"}
"""The demo's shared sign-in password (``mlteams``), documented in docs/development.md."""


def rig_secrets(
    basetemp: Path,
    team_hub: LocalHub,
    team_data: TeamData,
    mlflow_server: MLflowServer,
    collector: Collector,
    server_tokens: dict[str, str],
) -> dict[str, str]:
    found: dict[str, str] = {}
    for number, value in enumerate(team_data.secret_values(), 1):
        found[f"object store secret key #{number}"] = value
    found["MLflow admin password"] = mlflow_server.admin_password
    found["team hub's test token"] = team_hub.api_token
    for name in ("proxy_token", "cookie_secret"):
        for path in basetemp.rglob(name):
            raw = path.read_bytes().strip()
            # the hub writes its cookie secret as hex; a binary one is searched for as hex too
            found[f"{name} of {path.parent.name}"] = raw.decode() if raw.isascii() else raw.hex()
    for process in rig_processes():
        for name, value in process.secrets().items():
            if name not in NOT_SECRET:
                found.setdefault(f"{name} of {process.command[:80]}", value)
    found.update(collector.created_tokens)
    found.update(server_tokens)
    return found


def test_no_secret_in_any_pod_spec_response_page_or_log(
    cluster: LocalCluster,
    team_hub: LocalHub,
    team_data: TeamData,
    mlflow_server: MLflowServer,
    response_collector: Collector,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert cluster.control_plane is not None
    basetemp = tmp_path_factory.getbasetemp()
    # a token handed out and used now, so that one is searched for even when this test runs alone
    token = user_token(team_hub, "v-alice", "secrets check")
    status, _ = as_user(team_hub, token, "GET", f"{SERVICE_API}/shares")
    assert status == 200
    pods = audit_pods(cluster.control_plane.audit_log)
    server_tokens = {
        f"server token in {pod.where.split(' (')[0]}": token
        for pod in pods
        if (token := pod.own_token())
    }
    secrets = rig_secrets(
        basetemp, team_hub, team_data, mlflow_server, response_collector, server_tokens
    )
    # the check is not vacuous: the kinds of secret the rig creates are all there
    names = " ".join(secrets)
    for expected in (
        "MLTEAMS_ADMIN_PAGES_TOKEN",
        "JUPYTERHUB_API_TOKEN",
        "MLTEAMS_REGISTRY_PASSWORD",
        "MLTEAMS_OBJECT_STORE_SECRET_KEY",
        "MLTEAMS_PROXY_TOKEN",
        "object store secret key",
        "MLflow admin password",
        "token made for",
    ):
        assert expected in names, f"no secret named {expected!r} was collected"
    assert too_short(secrets) == [], "secrets too short to be searched for"

    responses = [Source(r.where, r.body) for r in response_collector.records()]
    assert responses, "no HTTP response was recorded"
    assert pods, "the apiserver's audit log holds no pod"
    logs = list(log_sources([basetemp]))
    assert any("jupyterhub-" in source.where for source in logs), "the hub's log was not found"

    findings: list[Finding] = scan(secrets, [*pod_sources(pods), *responses, *logs])
    listing = "\n".join(f"  {finding}" for finding in findings)
    assert not findings, f"secret values found where they must not be:\n{listing}"
