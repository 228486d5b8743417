"""Homes, team folders and the team storage quota on the rig, through the hub's API.

Each server's home is a claim in its team's namespace (z2jh ``singleuser.storage`` type dynamic,
``devenv/jupyterhub_config.py``); team vision has a team folder; team audio's storage quota holds
one home (``team_config.yaml``).
"""

from __future__ import annotations

import uuid

import pytest
from kubernetes_asyncio import client

from devenv.hub import LocalHub
from hub_ext.policy.storage import TEAM_FOLDER_VOLUME
from tests.integration.team_hub_helpers import (
    call,
    read_file,
    restart_hub,
    server,
    spawn,
    stop,
    write_file,
)
from tests.kube_helpers import eventually

pytestmark = pytest.mark.integration

CPU_VISION = {"team": "vision", "profile": "cpu"}
CPU_NLP = {"team": "nlp", "profile": "cpu"}
CPU_AUDIO = {"team": "audio", "profile": "cpu"}
USER_LABEL = "hub.jupyter.org/username"


async def _claims(
    core: client.CoreV1Api, namespace: str, user: str
) -> list[client.V1PersistentVolumeClaim]:
    found = await core.list_namespaced_persistent_volume_claim(
        namespace, label_selector=f"{USER_LABEL}={user}"
    )
    return found.items


async def _pod(core: client.CoreV1Api, namespace: str, user: str) -> client.V1Pod:
    found = await core.list_namespaced_pod(namespace, label_selector=f"mlteams.io/user={user}")
    [pod] = found.items
    return pod


async def test_a_file_in_the_home_survives_stop_start_and_a_hub_restart(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    user = "v-dora"
    text = f"trained at {uuid.uuid4().hex}\n"
    await spawn(team_hub, user, CPU_VISION)
    await write_file(team_hub, user, "results.txt", text)

    # the home is a claim in the team's namespace, mounted at /home/jovyan
    [claim] = await _claims(core, "it-vision", user)
    assert claim.metadata.name == f"claim-{user}"
    assert claim.spec.resources.requests["storage"] == "10Gi"
    assert await _claims(core, "jupyterhub", user) == []
    pod = await _pod(core, "it-vision", user)
    claimed = {
        v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim
    }
    assert {f"claim-{user}", "team-folder"} <= claimed

    await stop(team_hub, user)
    await restart_hub(team_hub)
    await spawn(team_hub, user, CPU_VISION)
    assert await read_file(team_hub, user, "results.txt") == text
    assert [c.metadata.uid for c in await _claims(core, "it-vision", user)] == [claim.metadata.uid]

    await stop(team_hub, user)
    await spawn(team_hub, user, CPU_VISION)
    assert await read_file(team_hub, user, "results.txt") == text
    await stop(team_hub, user)


async def test_a_user_in_two_teams_has_a_separate_home_in_each(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    user = "both-carol"
    await spawn(team_hub, user, CPU_VISION)
    await write_file(team_hub, user, "vision-notes.txt", "vision only\n")
    await stop(team_hub, user)

    await spawn(team_hub, user, CPU_NLP)
    assert await read_file(team_hub, user, "vision-notes.txt") is None
    await write_file(team_hub, user, "nlp-notes.txt", "nlp only\n")
    pod = await _pod(core, "it-nlp", user)
    assert TEAM_FOLDER_VOLUME not in {v.name for v in pod.spec.volumes}
    await stop(team_hub, user)

    for namespace in ("it-vision", "it-nlp"):
        [claim] = await _claims(core, namespace, user)
        assert claim.metadata.name == f"claim-{user}"
    await spawn(team_hub, user, CPU_VISION)
    assert await read_file(team_hub, user, "vision-notes.txt") == "vision only\n"
    assert await read_file(team_hub, user, "nlp-notes.txt") is None
    await stop(team_hub, user)


async def _add_team_members(hub: LocalHub, group: str, users: list[str]) -> None:
    status, body = await call(hub, "POST", "/users", {"usernames": users})
    assert status in (201, 409), body
    status, body = await call(hub, "POST", f"/groups/{group}")
    assert status in (201, 409), body
    status, body = await call(hub, "POST", f"/groups/{group}/users", {"users": users})
    assert status == 200, body


async def test_the_team_storage_quota_refuses_a_home_beyond_it_with_a_clear_message(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    await _add_team_members(team_hub, "audio-engineers", ["a-ann", "a-ben"])
    # team audio's homes are 8Gi (its `home` setting) and its quota holds 12Gi
    await spawn(team_hub, "a-ann", CPU_AUDIO)
    [claim] = await _claims(core, "it-audio", "a-ann")
    assert claim.spec.resources.requests["storage"] == "8Gi"
    quota = await core.read_namespaced_resource_quota("mlteams-quota", "it-audio")
    assert quota.spec.hard["requests.storage"] == "12Gi"
    assert quota.spec.hard["persistentvolumeclaims"] == "5"

    status, body = await call(team_hub, "POST", "/users/a-ben/server", CPU_AUDIO)
    assert status == 403, body
    message = body["message"]
    assert "Team Audio has no storage left for your home" in message, message
    assert "8 GiB of its 12 GiB storage quota" in message, message
    assert "#ml-audio" in message and "quota.storage of team audio" in message, message
    assert "exceeded quota" not in message and "Traceback" not in message, message
    assert await server(team_hub, "a-ben") is None
    assert await _claims(core, "it-audio", "a-ben") == []
    pods = await core.list_namespaced_pod("it-audio", label_selector="mlteams.io/user=a-ben")
    assert pods.items == []

    # a home given back makes room: the refused user starts once a-ann's claim is gone
    await stop(team_hub, "a-ann")
    await core.delete_namespaced_persistent_volume_claim("claim-a-ann", "it-audio")

    async def freed() -> bool:
        current = await core.read_namespaced_resource_quota("mlteams-quota", "it-audio")
        return (current.status.used or {}).get("requests.storage") == "0"

    await eventually(freed, timeout=60, interval=0.5, what="a-ann's home to leave the quota")
    await spawn(team_hub, "a-ben", CPU_AUDIO)
    await stop(team_hub, "a-ben")
    # team audio's quota is left as it was found, for the other tests that fill it
    await core.delete_namespaced_persistent_volume_claim("claim-a-ben", "it-audio")
    await eventually(freed, timeout=60, interval=0.5, what="a-ben's home to leave the quota")


async def test_teammates_share_the_team_folder_and_other_teams_cannot_reach_it(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    folder = await core.read_namespaced_persistent_volume_claim("team-folder", "it-vision")
    assert folder.spec.access_modes == ["ReadWriteMany"]

    await spawn(team_hub, "v-dora", CPU_VISION)
    await spawn(team_hub, "v-alice", CPU_VISION)
    await write_file(team_hub, "v-dora", "team/from-dora.txt", "hello team\n")
    assert await read_file(team_hub, "v-alice", "team/from-dora.txt") == "hello team\n"
    await write_file(team_hub, "v-alice", "team/from-alice.txt", "hello dora\n")
    assert await read_file(team_hub, "v-dora", "team/from-alice.txt") == "hello dora\n"

    # another team's user: not a member of vision, and their own servers have no team folder
    status, body = await call(team_hub, "POST", "/users/n-erin/server", CPU_VISION)
    assert status == 403 and "not a member of team" in body["message"], body
    await spawn(team_hub, "n-erin", CPU_NLP)
    pod = await _pod(core, "it-nlp", "n-erin")
    assert TEAM_FOLDER_VOLUME not in {v.name for v in pod.spec.volumes}
    assert await read_file(team_hub, "n-erin", "team/from-dora.txt") is None
    for user in ("v-dora", "v-alice", "n-erin"):
        await stop(team_hub, user)

    # and the cluster: a pod in team nlp's namespace naming vision's claim is never scheduled
    name = f"borrow-{uuid.uuid4().hex[:6]}"
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "mlteams/notebook:dev",
                    "command": ["sleep", "600"],
                    "volumeMounts": [{"name": "theirs", "mountPath": "/mnt/theirs"}],
                }
            ],
            "volumes": [{"name": "theirs", "persistentVolumeClaim": {"claimName": "team-folder"}}],
        },
    }
    await core.create_namespaced_pod("it-nlp", manifest)
    try:

        async def refused() -> str | None:
            events = await core.list_namespaced_event(
                "it-nlp", field_selector=f"involvedObject.name={name}"
            )
            found = [e.message for e in events.items if e.reason == "FailedScheduling"]
            return found[0] if found else None

        said = await eventually(refused, timeout=60, interval=0.5, what="the scheduler's refusal")
        assert 'persistentvolumeclaim "team-folder" not found' in said, said
        pod = await core.read_namespaced_pod(name, "it-nlp")
        assert pod.status.phase == "Pending" and not pod.spec.node_name
    finally:
        await core.delete_namespaced_pod(name, "it-nlp", grace_period_seconds=0)


async def test_deleting_a_user_deletes_their_home_in_every_team(
    team_hub: LocalHub, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    user = "two-teams-gus"
    await _add_team_members(team_hub, "vision-engineers", [user])
    await _add_team_members(team_hub, "nlp-engineers", [user])
    for options in (CPU_VISION, CPU_NLP):
        await spawn(team_hub, user, options)
        await stop(team_hub, user)
    for namespace in ("it-vision", "it-nlp"):
        assert [c.metadata.name for c in await _claims(core, namespace, user)] == [f"claim-{user}"]

    status, body = await call(team_hub, "DELETE", f"/users/{user}")
    assert status == 204, body

    async def homes_gone() -> bool:
        for namespace in ("it-vision", "it-nlp"):
            left = [
                c for c in await _claims(core, namespace, user) if not c.metadata.deletion_timestamp
            ]
            if left:
                return False
        return True

    await eventually(homes_gone, timeout=60, interval=0.5, what=f"{user}'s homes deleted")
    # the team folder and the other members' homes are still there
    await core.read_namespaced_persistent_volume_claim("team-folder", "it-vision")
