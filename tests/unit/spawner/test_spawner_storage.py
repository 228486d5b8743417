"""Homes and team folders through TeamKubeSpawner and the installed KubeSpawner's ``_start()``.

The Kubernetes API is in memory (``fake_kube``), with z2jh's dynamic home storage configured as
the chart renders ``singleuser.storage`` for KubeSpawner.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes_asyncio.client import V1ObjectMeta, V1PersistentVolumeClaim
from kubernetes_asyncio.client.rest import ApiException
from tornado import web

from hub_ext.policy.storage import TEAM_FOLDER_VOLUME
from hub_ext.spawner import TeamKubeSpawner
from server_ext import contract
from tests.unit.spawner.fake_kube import FakeKube, hub_config, make_spawner

pytestmark = pytest.mark.unit

VISION = ["vision-engineers"]
NLP = ["/ml/nlp"]
HOME = {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
HOME_MOUNT = {"name": "volume-{user_server}", "mountPath": "/home/jovyan"}


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    fake = FakeKube()
    fake.install(monkeypatch)
    return fake


def storage_config(**teams: dict[str, Any]) -> Any:
    """The unit tests' hub with dynamic homes (z2jh singleuser.storage, type dynamic)."""
    config = hub_config(
        storage_pvc_ensure=True,
        storage_capacity="10Gi",
        storage_access_modes=["ReadWriteOnce"],
        volumes=[HOME],
        volume_mounts=[HOME_MOUNT],
    )
    config.MLTeams.teams["vision"]["shared_folder"] = {}
    for team, settings in teams.items():
        config.MLTeams.teams[team].update(settings)
    return config


def folder_claim(kube: FakeKube, namespace: str = "team-vision", name: str = "team-folder") -> None:
    kube.claims[f"{namespace}/{name}"] = V1PersistentVolumeClaim(
        metadata=V1ObjectMeta(name=name, namespace=namespace)
    )


def claim_names(pod: Any) -> dict[str, str]:
    """Volume name to claim name, for the pod's claim volumes."""
    out = {}
    for volume in pod.spec.volumes:
        claim = volume.persistent_volume_claim
        if isinstance(claim, dict):
            out[volume.name] = claim["claimName"]
        elif claim is not None:
            out[volume.name] = claim.claim_name
    return out


async def refused_spawn() -> web.HTTPError:
    """Start ana's GPU server in team vision, which must be refused; its GPU is not kept."""
    ana = make_spawner(
        storage_config(), "ana", VISION, {"team": "vision", "profile": "pytorch-1gpu"}
    )
    ana.handler = SimpleNamespace(settings={})
    with pytest.raises(web.HTTPError) as refused:
        await ana.start()
    assert ana.team_state.ledger.reservation(ana.server_id) is None
    return refused.value


async def test_the_home_is_created_in_the_team_namespace_with_the_team_folder(
    kube: FakeKube,
) -> None:
    folder_claim(kube)
    ana = make_spawner(storage_config(), "ana", VISION, {"team": "vision", "profile": "cpu"})
    await ana.start()
    home = kube.claims["team-vision/claim-ana"]
    assert home.spec.resources.requests == {"storage": "10Gi"}
    assert home.metadata.labels["hub.jupyter.org/username"] == "ana"
    [pod] = kube.created
    assert pod.metadata.namespace == "team-vision"
    assert claim_names(pod) == {"volume-ana": "claim-ana", TEAM_FOLDER_VOLUME: "team-folder"}
    mounts = {
        m["name"] if isinstance(m, dict) else m.name: (
            m["mountPath"] if isinstance(m, dict) else m.mount_path
        )
        for m in pod.spec.containers[0].volume_mounts
    }
    assert mounts["volume-ana"] == "/home/jovyan"
    assert mounts[TEAM_FOLDER_VOLUME] == "/home/jovyan/team"
    assert ana.get_state()["pvc_name"] == "claim-ana"
    # the server is told that what users install in their home survives a restart
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env[contract.HOME_PERSISTENT] == "true"


async def test_a_home_without_a_volume_is_reported_as_not_persistent(kube: FakeKube) -> None:
    ana = make_spawner(hub_config(), "ana", VISION, {"team": "vision", "profile": "cpu"})
    await ana.start()
    [pod] = kube.created
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env[contract.HOME_PERSISTENT] == "false"


async def test_a_user_in_two_teams_gets_a_home_in_each_and_only_the_chosen_teams_folder(
    kube: FakeKube,
) -> None:
    folder_claim(kube)
    config = storage_config(nlp={"home": {"capacity": "5Gi", "storage_class": "standard"}})
    carol = make_spawner(config, "carol", VISION + NLP, {"team": "vision", "profile": "cpu"})
    await carol.start()
    await carol.stop()
    state = carol.get_state()

    # a new spawner with the saved state, as after a hub restart: the claim's name is remembered
    # for the namespace of the last spawn, and created anew in the other team's namespace
    again = make_spawner(config, "carol", VISION + NLP, {"team": "nlp", "profile": "cpu"})
    again.load_state(state)
    await again.start()
    nlp_home = kube.claims["ml-nlp/claim-carol"]
    assert nlp_home.spec.resources.requests == {"storage": "5Gi"}
    assert nlp_home.spec.storage_class_name == "standard"
    assert "team-vision/claim-carol" in kube.claims
    pod = kube.created[-1]
    assert pod.metadata.namespace == "ml-nlp"
    assert claim_names(pod) == {"volume-carol": "claim-carol"}
    await again.stop()

    # back in vision: the global home settings again, and the team folder
    again.user_options = {"team": "vision", "profile": "cpu"}
    await again.start()
    assert (again.storage_capacity, again.storage_class) == ("10Gi", None)
    assert claim_names(kube.created[-1])[TEAM_FOLDER_VOLUME] == "team-folder"


async def test_a_missing_team_folder_refuses_the_spawn_clearly(kube: FakeKube) -> None:
    refused = await refused_spawn()
    assert refused.status_code == 424
    assert "shared folder is not ready" in refused.log_message
    assert kube.created == [] and kube.claims == {}


async def test_a_storage_quota_refusal_gets_its_own_message_and_frees_the_reservation(
    kube: FakeKube,
) -> None:
    folder_claim(kube)
    exceeded = ApiException(status=403, reason="Forbidden")
    exceeded.body = (
        'persistentvolumeclaims "claim-ana" is forbidden: exceeded quota: mlteams-quota, '
        "requested: requests.storage=10Gi, used: requests.storage=95Gi, limited: "
        "requests.storage=100Gi"
    )
    kube.claim_errors.append(exceeded)
    refused = await refused_spawn()
    assert refused.status_code == 403
    message = refused.log_message
    assert message.startswith("Team vision has no storage left for your home: it needs 10 GiB")
    assert "exceeded quota" not in message
    assert kube.created == []


async def test_deleting_a_user_removes_their_homes_in_every_team_namespace(
    kube: FakeKube,
) -> None:
    folder_claim(kube)
    config = storage_config()
    carol = make_spawner(config, "carol", VISION + NLP, {"team": "vision", "profile": "cpu"})
    await carol.start()
    await carol.stop()
    carol.user_options = {"team": "nlp", "profile": "cpu"}
    await carol.start()
    await carol.stop()
    # a claim of the same name that is not carol's is left alone
    kube.claims["team-research/claim-carol"] = V1PersistentVolumeClaim(
        metadata=V1ObjectMeta(
            name="claim-carol", labels={"hub.jupyter.org/username": "someone-else"}
        )
    )
    assert {"team-vision/claim-carol", "ml-nlp/claim-carol"} <= kube.claims.keys()
    await carol.delete_forever()
    assert sorted(kube.claims) == ["team-research/claim-carol", "team-vision/team-folder"]


async def test_delete_pvc_off_keeps_every_home(kube: FakeKube) -> None:
    folder_claim(kube)
    config = storage_config()
    config.KubeSpawner.delete_pvc = False
    carol = make_spawner(config, "carol", VISION + NLP, {"team": "vision", "profile": "cpu"})
    await carol.start()
    await carol.stop()
    await carol.delete_forever()
    assert "team-vision/claim-carol" in kube.claims


async def test_the_form_says_where_each_home_lives(kube: FakeKube) -> None:
    carol = make_spawner(storage_config(), "carol", VISION + NLP)
    html = await carol.get_options_form()
    assert 'data-testid="mlteams-storage-vision"' in html
    assert (
        "Your home: a volume of 10 GiB in namespace team-vision, kept when the server stops. "
        "Your home in team nlp is separate. Team folder: /home/jovyan/team, shared with every "
        "member of vision."
    ) in html
    assert 'data-testid="mlteams-storage-nlp"' in html


async def test_without_persistent_homes_the_form_says_nothing_about_them(kube: FakeKube) -> None:
    carol = make_spawner(hub_config(), "carol", VISION + NLP)
    assert isinstance(carol, TeamKubeSpawner)
    assert "mlteams-storage" not in await carol.get_options_form()
