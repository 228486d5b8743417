"""TeamKubeSpawner on the rig: profiles, team namespaces, quotas, the queue and hub restarts."""

from __future__ import annotations

import asyncio
import re

import pytest
from kubernetes_asyncio import client

from devenv.hub import LocalHub
from tests.integration.team_hub_helpers import (
    call,
    progress_message,
    server,
    wait_ready,
    wait_stopped,
)
from tests.kube_helpers import eventually

pytestmark = pytest.mark.integration


async def _pods(core: client.CoreV1Api, namespace: str, user: str) -> list[client.V1Pod]:
    found = await core.list_namespaced_pod(namespace, label_selector=f"mlteams.io/user={user}")
    return found.items


async def test_gpu_profile_runs_in_team_namespace_with_its_settings(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    status, body = await call(
        team_hub, "POST", "/users/v-alice/server", {"team": "vision", "profile": "gpu1"}
    )
    assert status in (201, 202), body
    await wait_ready(team_hub, "v-alice")

    [pod] = await _pods(core, "it-vision", "v-alice")
    container = pod.spec.containers[0]
    assert container.image == "mlteams/pytorch:dev"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert pod.metadata.labels["mlteams.io/team"] == "vision"
    assert pod.metadata.labels["mlteams.io/profile"] == "gpu1"
    assert pod.spec.node_name in {"gpu-0", "gpu-1"}
    assert any(t.key == "nvidia.com/gpu" for t in pod.spec.tolerations)
    env = {e.name: e.value for e in container.env}
    assert env["MLTEAMS_TEAM"] == "vision"
    assert env["MLTEAMS_PROFILE"] == "gpu1"

    status, _ = await call(team_hub, "DELETE", "/users/v-alice/server")
    assert status in (202, 204)
    await wait_stopped(team_hub, "v-alice")


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        ({"team": "nlp", "profile": "gpu2"}, 403, "not a member of team"),
        ({"team": "vision", "profile": "gpu2"}, 403, "gpu2"),
        ({"team": "vision", "profile": "no-such"}, 400, "no-such"),
        ({"team": "vision", "profile": "gpu1", "gpus": "two"}, 400, "gpus"),
        ({"team": "vision", "profile": "gpu1{{ 7*7 }}"}, 400, "profile"),
        ({"team": "vision", "profile": "cpu", "image": "evil:latest"}, 400, "image"),
    ],
)
async def test_bad_or_foreign_options_get_a_clear_4xx_and_no_pod(
    team_hub: LocalHub, kube: client.ApiClient, options: dict, status: int, message: str
) -> None:
    got, body = await call(team_hub, "POST", "/users/v-dora/server", options)
    assert got == status, body
    assert message in body["message"]
    assert "Traceback" not in body["message"]
    assert await server(team_hub, "v-dora") is None
    core = client.CoreV1Api(kube)
    for namespace in ("it-vision", "it-nlp"):
        assert await _pods(core, namespace, "v-dora") == []


async def test_twenty_concurrent_spawns_fill_the_quota_and_queue_the_rest(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    users = [f"v-{i:02d}" for i in range(20)]
    options = {"team": "vision", "profile": "gpu1-queued"}
    results = await asyncio.gather(
        *(call(team_hub, "POST", f"/users/{u}/server", options) for u in users)
    )
    assert all(status in (201, 202) for status, _ in results), results

    max_used = 0

    async def four_running() -> list[str] | None:
        nonlocal max_used
        quota = await core.read_namespaced_resource_quota("mlteams-quota", "it-vision")
        max_used = max(max_used, int((quota.status.used or {}).get("requests.nvidia.com/gpu", "0")))
        ready = [u for u in users if (s := await server(team_hub, u)) and s.get("ready")]
        return ready if len(ready) == 4 else None

    running = await eventually(four_running, timeout=240, interval=1, what="four ready servers")
    queued = [u for u in users if u not in running]

    # every other spawn reports its place in the team's queue on its progress stream: the hub
    # holds all sixteen in the queue, so it has admitted none of them
    positions = {}
    for user in queued:
        message = await asyncio.to_thread(progress_message, team_hub, user, "queued")
        match = re.search(r"position (\d+) of (\d+)", message)
        assert match, message
        positions[int(match.group(1))] = user
        assert match.group(2) == "16"
    assert sorted(positions) == list(range(1, 17))

    # and after all sixteen answered: the same four run, the others wait, and only the four
    # have pods
    still = [u for u in users if (s := await server(team_hub, u)) and s.get("ready")]
    assert sorted(still) == sorted(running), "no more than four may run"
    for user in queued:
        pending = await server(team_hub, user)
        assert pending is not None and pending["pending"] == "spawn", (user, pending)
    pods = await core.list_namespaced_pod("it-vision", label_selector="mlteams.io/user")
    holders = [u for p in pods.items if (u := p.metadata.labels["mlteams.io/user"]) in users]
    assert sorted(holders) == sorted(running)
    first = positions[1]

    status, _ = await call(team_hub, "DELETE", f"/users/{running[0]}/server")
    assert status in (202, 204)
    await wait_ready(team_hub, first)
    quota = await core.read_namespaced_resource_quota("mlteams-quota", "it-vision")
    assert int(quota.status.used["requests.nvidia.com/gpu"]) <= 4
    assert max_used <= 4

    for user in users:
        await call(team_hub, "DELETE", f"/users/{user}/server")
    for user in users:
        await wait_stopped(team_hub, user)


async def test_hub_restart_keeps_servers_running_and_the_ledger_right(team_hub: LocalHub) -> None:
    for user in ("n-bob", "both-carol"):
        status, body = await call(
            team_hub, "POST", f"/users/{user}/server", {"team": "nlp", "profile": "gpu2"}
        )
        assert status in (201, 202), body
    for user in ("n-bob", "both-carol"):
        await wait_ready(team_hub, user)

    await asyncio.to_thread(team_hub.stop)
    await asyncio.to_thread(team_hub.start)

    for user in ("n-bob", "both-carol"):
        model = await server(team_hub, user)
        assert model is not None and model["ready"], (user, model)
    reached = await asyncio.to_thread(team_hub.get_through_proxy, "/user/n-bob/api")
    assert "version" in reached

    # the restarted hub's ledger, rebuilt from the pod reflector, knows team nlp's 4 GPUs are held
    status, body = await call(
        team_hub, "POST", "/users/n-erin/server", {"team": "nlp", "profile": "gpu2"}
    )
    assert status == 429, body
    assert "0 of 4 GPUs free" in body["message"], body["message"]

    for user in ("n-bob", "both-carol"):
        await call(team_hub, "DELETE", f"/users/{user}/server")
    for user in ("n-bob", "both-carol"):
        await wait_stopped(team_hub, user)
    status, body = await call(
        team_hub, "POST", "/users/n-erin/server", {"team": "nlp", "profile": "gpu2"}
    )
    assert status in (201, 202), body
    await wait_ready(team_hub, "n-erin")
    await call(team_hub, "DELETE", "/users/n-erin/server")
    await wait_stopped(team_hub, "n-erin")


async def test_user_in_no_team_is_told_whom_to_ask(team_hub: LocalHub) -> None:
    await call(team_hub, "POST", "/users/nobody-frank")
    status, body = await call(team_hub, "POST", "/users/nobody-frank/server", {"profile": "cpu"})
    assert status == 403, body
    assert "not a member of any ML team" in body["message"]
    assert "Ask a platform admin" in body["message"]
    assert "vision" not in body["message"] and "nlp" not in body["message"]


async def test_refusals_do_not_count_toward_the_hubs_failure_limit(team_hub: LocalHub) -> None:
    assert team_hub.child is not None
    log = team_hub.child.log_path
    start = log.stat().st_size
    for _ in range(8):
        status, _ = await call(
            team_hub, "POST", "/users/v-dora/server", {"team": "vision", "profile": "nope"}
        )
        assert status == 400
    answered = "400 POST /hub/api/users/v-dora/server"

    async def answers_logged() -> str | None:
        added = log.read_bytes()[start:].decode(errors="replace")
        return added if added.count(answered) >= 8 else None

    # JupyterHub counts a failed spawn before it answers the request, warns from the second
    # failure in a row and, at consecutive_failure_limit (5 here), logs that it aborts and exits
    # two seconds later: once the hub has logged its eight answers, its count is in the log
    added = await eventually(answers_logged, timeout=30, interval=0.2, what="eight answers logged")
    assert "consecutive spawns failed" not in added, added
    assert "Aborting due to" not in added, added
    assert team_hub.child.alive(), "the hub exited after refused spawns"
    status, _ = await call(team_hub, "GET", "/")
    assert status == 200


async def test_resource_quota_backstop_gives_the_same_clear_message(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    quota = await core.read_namespaced_resource_quota("mlteams-quota", "it-nlp")
    hard = dict(quota.spec.hard)
    await core.patch_namespaced_resource_quota(
        "mlteams-quota", "it-nlp", {"spec": {"hard": {**hard, "requests.nvidia.com/gpu": "0"}}}
    )

    async def quota_is_zero() -> bool:
        current = await core.read_namespaced_resource_quota("mlteams-quota", "it-nlp")
        return (current.status.hard or {}).get("requests.nvidia.com/gpu") == "0"

    await eventually(quota_is_zero, what="the lowered quota to be in force")
    try:
        status, body = await call(
            team_hub, "POST", "/users/n-erin/server", {"team": "nlp", "profile": "gpu2"}
        )
        assert status == 403, body
        assert "exceeded quota" not in body["message"]
        assert "quota for namespace it-nlp is used up" in body["message"]
        assert await server(team_hub, "n-erin") is None
    finally:
        await core.patch_namespaced_resource_quota(
            "mlteams-quota", "it-nlp", {"spec": {"hard": hard}}
        )
