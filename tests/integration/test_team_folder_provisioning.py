"""The team folder and the storage quota provisioned by the hub's own service account on the rig."""

from __future__ import annotations

import logging

import pytest
from kubernetes_asyncio import client

from hub_ext.policy import MLTeamsConfig, load_config
from hub_ext.policy.manifests import render_team_manifests
from hub_ext.provisioning.apply import check_ready, reconcile
from tests.integration.test_provisioning import (
    HUB_SA,
    Stage,
    service_account_client,
    stage,
    until_allowed,
)

pytestmark = pytest.mark.integration

LOG = logging.getLogger("test-team-folder")
__all__ = ["stage"]  # the fixture, used by name below


def folder_config(names: Stage, *, create: bool = True) -> MLTeamsConfig:
    return load_config(
        {
            "teams": {
                "vision": {
                    "namespace": names.vision,
                    "quota": {"gpus": 1, "storage": "100Gi", "claims": 10},
                    "profiles": ["cpu"],
                    "shared_folder": {"capacity": "20Gi", "create": create},
                },
                "nlp": {"namespace": names.nlp, "quota": {"gpus": 0}, "profiles": ["cpu"]},
            },
            "profiles": {"cpu": {"image": "mlteams/test:dev"}},
        }
    )


def team_objects(names: Stage, config: MLTeamsConfig) -> list[dict]:
    return render_team_manifests(
        config, hub_namespace=names.hub_namespace, hub_service_account=HUB_SA, cluster_scoped=False
    )


async def test_the_hub_creates_the_team_folder_after_the_storage_quota(
    kube: client.ApiClient, stage: Stage
) -> None:
    await reconcile(kube, stage.cluster(provisioning=True), log=LOG)
    config = folder_config(stage)
    core = client.CoreV1Api(kube)
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        await until_allowed(hub, "create", "namespaces")
        report = await reconcile(hub, team_objects(stage, config), log=LOG)
        assert [(o.kind, o.namespace, o.change) for o in report.objects][-4:] == [
            ("Namespace", None, "created"),
            ("ResourceQuota", stage.vision, "created"),
            ("RoleBinding", stage.vision, "created"),
            ("PersistentVolumeClaim", stage.vision, "created"),
        ]
        assert not (await reconcile(hub, team_objects(stage, config), log=LOG)).changed
        assert await check_ready(hub, config) == []

    claim = await core.read_namespaced_persistent_volume_claim("team-folder", stage.vision)
    assert claim.spec.access_modes == ["ReadWriteMany"]
    assert claim.spec.resources.requests == {"storage": "20Gi"}
    assert claim.metadata.labels["mlteams.io/team"] == "vision"
    quota = await core.read_namespaced_resource_quota("mlteams-quota", stage.vision)
    assert quota.spec.hard["requests.storage"] == "100Gi"
    assert quota.spec.hard["persistentvolumeclaims"] == "10"
    nlp_claims = await core.list_namespaced_persistent_volume_claim(stage.nlp)
    assert nlp_claims.items == []


async def test_without_provisioning_a_missing_team_folder_is_reported(
    kube: client.ApiClient, stage: Stage
) -> None:
    await reconcile(kube, stage.cluster(provisioning=False), log=LOG)
    config = folder_config(stage, create=False)
    # the admin applied everything the hub would, and has not made the folder's claim yet
    await reconcile(kube, team_objects(stage, config), log=LOG)
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        await until_allowed(hub, "create", "pods", stage.vision)
        assert await check_ready(hub, config) == [
            f"team vision: the team folder's PersistentVolumeClaim {stage.vision}/team-folder "
            "does not exist, so the team's servers cannot start; create it (bound to the team's "
            "shared storage) or remove shared_folder."
        ]
