"""Provisioning on the rig's real apiserver: apply, no-op, drift, and the hub's least privilege."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from hub_ext.policy import MLTeamsConfig, load_config
from hub_ext.policy.manifests import (
    PROVISIONER_RULES,
    RBAC_API_VERSION,
    TEAM_CLUSTER_ROLE,
    cluster_manifests,
    render_team_manifests,
    team_manifests,
)
from hub_ext.provisioning.apply import ProvisioningError, check_ready, reconcile
from tests.kube_helpers import eventually, sleeper_pod, unique

pytestmark = pytest.mark.integration

LOG = logging.getLogger("test-provisioning")
HUB_SA = "hub"


@dataclass
class Stage:
    """Unique names for one test: the hub's namespace and two team namespaces."""

    hub_namespace: str = field(default_factory=lambda: unique("hub"))
    vision: str = field(default_factory=lambda: unique("vision"))
    nlp: str = field(default_factory=lambda: unique("nlp"))
    extra_cluster_roles: list[str] = field(default_factory=list)

    def config(
        self, vision_gpus: int = 4, nlp_quota: dict[str, Any] | None = None
    ) -> MLTeamsConfig:
        return load_config(
            {
                "teams": {
                    "vision": {
                        "namespace": self.vision,
                        "quota": {"gpus": vision_gpus, "gpus_per_user": 1},
                        "profiles": ["gpu"],
                    },
                    "nlp": {
                        "namespace": self.nlp,
                        "quota": nlp_quota or {"gpus": 2, "cpu": "8", "memory": "32Gi"},
                        "profiles": ["gpu"],
                    },
                },
                "profiles": {"gpu": {"image": "mlteams/test:dev", "gpus": 1}},
            }
        )

    def teams(self, config: MLTeamsConfig | None = None) -> list[dict[str, Any]]:
        return render_team_manifests(
            config or self.config(),
            hub_namespace=self.hub_namespace,
            hub_service_account=HUB_SA,
            cluster_scoped=False,
        )

    def cluster(self, *, provisioning: bool) -> list[dict[str, Any]]:
        return cluster_manifests(
            hub_namespace=self.hub_namespace,
            hub_service_account=HUB_SA,
            provisioning=provisioning,
        )


@pytest.fixture
async def stage(kube: client.ApiClient) -> AsyncIterator[Stage]:
    """The hub's namespace with its service account; everything named after it goes afterwards."""
    names = Stage()
    core = client.CoreV1Api(kube)
    await core.create_namespace({"metadata": {"name": names.hub_namespace}})
    await core.create_namespaced_service_account(
        names.hub_namespace, {"metadata": {"name": HUB_SA}}
    )
    yield names
    rbac = client.RbacAuthorizationV1Api(kube)
    bindings = await rbac.list_cluster_role_binding()
    for binding in bindings.items:
        if binding.metadata.name.endswith(f"-{names.hub_namespace}"):
            await _ignore_missing(rbac.delete_cluster_role_binding(binding.metadata.name))
    for role in names.extra_cluster_roles:
        await _ignore_missing(rbac.delete_cluster_role(role))
    for namespace in (names.vision, names.nlp, names.hub_namespace):
        await _ignore_missing(core.delete_namespace(namespace))


async def _ignore_missing(call: Awaitable[Any]) -> None:
    try:
        await call
    except ApiException as exc:
        if exc.status != 404:
            raise


async def service_account_client(
    admin: client.ApiClient, namespace: str, name: str
) -> client.ApiClient:
    """A client that authenticates as a service account, with a token from the TokenRequest API."""
    core = client.CoreV1Api(admin)
    request = await core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    admin_cfg = admin.configuration
    cfg = client.Configuration(host=admin_cfg.host)
    cfg.ssl_ca_cert = admin_cfg.ssl_ca_cert
    cfg.verify_ssl = admin_cfg.verify_ssl
    cfg.api_key = {"BearerToken": request.status.token}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(configuration=cfg)


async def allowed(
    api: client.ApiClient, verb: str, resource: str, namespace: str = "", group: str = ""
) -> bool:
    review = {
        "spec": {
            "resourceAttributes": {
                "verb": verb,
                "resource": resource,
                "group": group,
                "namespace": namespace,
            }
        }
    }
    answer = await client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(answer.status.allowed)


async def until_allowed(
    api: client.ApiClient, verb: str, resource: str, namespace: str = ""
) -> None:
    async def probe() -> bool:
        return await allowed(api, verb, resource, namespace)

    await eventually(probe, timeout=20, what=f"RBAC to allow {verb} {resource} {namespace}")


async def forbidden(call: Awaitable[Any]) -> ApiException:
    with pytest.raises(ApiException) as caught:
        await call
    assert caught.value.status == 403, caught.value.body
    return caught.value


def changes(report) -> list[tuple[str, str | None, str]]:
    return [(item.kind, item.namespace, item.change) for item in report.objects]


async def test_reconcile_creates_then_no_op_then_updates_a_changed_quota(
    kube: client.ApiClient, stage: Stage
) -> None:
    core = client.CoreV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)

    first = await reconcile(kube, stage.teams(), log=LOG)
    assert changes(first) == [
        ("Namespace", None, "created"),
        ("ResourceQuota", stage.nlp, "created"),
        ("RoleBinding", stage.nlp, "created"),
        ("Namespace", None, "created"),
        ("ResourceQuota", stage.vision, "created"),
        ("RoleBinding", stage.vision, "created"),
    ]
    namespace = await core.read_namespace(stage.vision)
    assert namespace.metadata.labels["mlteams.io/team"] == "vision"
    assert namespace.metadata.labels["app.kubernetes.io/managed-by"] == "jupyterhub-mlteams"
    quota = await core.read_namespaced_resource_quota("mlteams-quota", stage.nlp)
    assert quota.spec.hard == {
        "requests.nvidia.com/gpu": "2",
        "limits.cpu": "8",
        "limits.memory": "32Gi",
    }
    binding = await rbac.read_namespaced_role_binding("mlteams-hub", stage.vision)
    assert binding.role_ref.name == TEAM_CLUSTER_ROLE
    assert [(s.kind, s.namespace, s.name) for s in binding.subjects] == [
        ("ServiceAccount", stage.hub_namespace, HUB_SA)
    ]

    second = await reconcile(kube, stage.teams(), log=LOG)
    assert not second.changed
    assert len(second.unchanged) == 6

    changed = stage.config(vision_gpus=6, nlp_quota={"gpus": 3})
    third = await reconcile(kube, stage.teams(changed), log=LOG)
    assert [(item.kind, item.namespace) for item in third.updated] == [
        ("ResourceQuota", stage.nlp),
        ("ResourceQuota", stage.vision),
    ]
    assert third.summary() == "0 created, 2 updated, 4 unchanged"
    vision = await core.read_namespaced_resource_quota("mlteams-quota", stage.vision)
    assert vision.spec.hard == {"requests.nvidia.com/gpu": "6"}
    nlp = await core.read_namespaced_resource_quota("mlteams-quota", stage.nlp)
    assert nlp.spec.hard == {"requests.nvidia.com/gpu": "3"}
    assert await check_ready(kube, changed) == []


async def test_reconcile_keeps_what_others_added_and_takes_back_what_drifted(
    kube: client.ApiClient, stage: Stage
) -> None:
    core = client.CoreV1Api(kube)
    await reconcile(kube, stage.teams(), log=LOG)
    await core.patch_namespace(stage.vision, {"metadata": {"labels": {"owner": "ml-platform"}}})
    await core.patch_namespaced_resource_quota(
        "mlteams-quota",
        stage.vision,
        {"spec": {"hard": {"requests.nvidia.com/gpu": "1", "count/secrets": "50"}}},
    )
    report = await reconcile(kube, stage.teams(), log=LOG)
    assert [(item.kind, item.namespace) for item in report.updated] == [
        ("ResourceQuota", stage.vision)
    ]
    quota = await core.read_namespaced_resource_quota("mlteams-quota", stage.vision)
    assert quota.spec.hard == {"requests.nvidia.com/gpu": "4", "count/secrets": "50"}
    namespace = await core.read_namespace(stage.vision)
    assert namespace.metadata.labels["owner"] == "ml-platform"


async def test_hub_service_account_provisions_and_has_least_privilege(
    kube: client.ApiClient, stage: Stage, namespace: str
) -> None:
    admin = await reconcile(kube, stage.cluster(provisioning=True), log=LOG)
    assert [item.kind for item in admin.objects] == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ]
    core = client.CoreV1Api(kube)
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        await until_allowed(hub, "create", "namespaces")
        report = await reconcile(hub, stage.teams(), log=LOG)
        assert len(report.created) == 6
        assert not (await reconcile(hub, stage.teams(), log=LOG)).changed
        assert await check_ready(hub, stage.config()) == []

        async def default_account() -> bool:
            accounts = await core.list_namespaced_service_account(stage.vision)
            return any(a.metadata.name == "default" for a in accounts.items)

        await eventually(default_account, what="the default service account in the team namespace")
        hub_core = client.CoreV1Api(hub)
        pod = sleeper_pod("probe")
        pod["metadata"]["labels"] = {"component": "singleuser-server"}
        created = await hub_core.create_namespaced_pod(stage.vision, pod)
        assert created.metadata.namespace == stage.vision
        assert (await hub_core.read_namespaced_pod("probe", stage.vision)).metadata.name == "probe"
        everywhere = await hub_core.list_pod_for_all_namespaces(
            label_selector="component=singleuser-server"
        )
        assert ("probe", stage.vision) in {
            (p.metadata.name, p.metadata.namespace) for p in everywhere.items
        }
        await hub_core.list_event_for_all_namespaces(limit=1)

        await forbidden(hub_core.read_namespaced_secret("anything", stage.vision))
        await forbidden(hub_core.list_namespaced_secret(stage.vision))
        await forbidden(hub_core.create_namespaced_pod(namespace, sleeper_pod("outside")))
        await forbidden(hub_core.list_secret_for_all_namespaces())
        await forbidden(hub_core.delete_namespace(stage.nlp))
        await forbidden(
            hub_core.patch_namespaced_pod(
                "probe", stage.vision, {"metadata": {"labels": {"x": "y"}}}
            )
        )
        hub_rbac = client.RbacAuthorizationV1Api(hub)
        admin_binding = {
            "metadata": {"name": "grab-admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "admin",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": HUB_SA, "namespace": stage.hub_namespace}
            ],
        }
        await forbidden(hub_rbac.create_namespaced_role_binding(stage.vision, admin_binding))
        await forbidden(hub_rbac.delete_namespaced_role_binding("mlteams-hub", stage.vision))
        await hub_core.delete_namespaced_pod("probe", stage.vision, grace_period_seconds=0)


async def test_service_account_without_the_cluster_roles_gets_a_clear_error(
    kube: client.ApiClient, stage: Stage
) -> None:
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        with pytest.raises(ProvisioningError) as caught:
            await reconcile(hub, stage.teams(), log=LOG)
    error = caught.value
    message = str(error)
    assert message.startswith(
        f"the hub's service account {stage.hub_namespace}:{HUB_SA} may not get namespaces "
        f"at the cluster scope, which it needs for Namespace {stage.nlp}; "
    )
    assert "grant it the ClusterRole mlteams-hub-provisioner" in message
    assert "mlteams-manifests --values <your values file> --provisioning" in message
    assert "set hub.config.MLTeams.provision to false" in message
    assert (error.status, error.kind, error.name) == (403, "Namespace", stage.nlp)
    assert isinstance(error.__cause__, ApiException)


async def test_hub_without_provisioning_rights_may_not_create_namespaces(
    kube: client.ApiClient, stage: Stage
) -> None:
    await reconcile(kube, stage.cluster(provisioning=False), log=LOG)
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        await until_allowed(hub, "get", "namespaces")
        with pytest.raises(ProvisioningError) as caught:
            await reconcile(hub, stage.teams(), log=LOG)
    assert str(caught.value).startswith(
        f"the hub's service account {stage.hub_namespace}:{HUB_SA} may not create namespaces "
        "at the cluster scope (server-side apply needs both the create and patch verbs), "
        f"which it needs for Namespace {stage.nlp}; grant it the ClusterRole "
        "mlteams-hub-provisioner"
    )


async def test_provisioner_without_bind_cannot_create_the_role_binding(
    kube: client.ApiClient, stage: Stage
) -> None:
    role = unique("mlteams-test-nobind")
    stage.extra_cluster_roles.append(role)
    rules = [dict(rule) for rule in PROVISIONER_RULES if "bind" not in rule["verbs"]]
    await reconcile(
        kube,
        [
            *stage.cluster(provisioning=False),
            {
                "apiVersion": RBAC_API_VERSION,
                "kind": "ClusterRole",
                "metadata": {"name": role},
                "rules": rules,
            },
            {
                "apiVersion": RBAC_API_VERSION,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{role}-{stage.hub_namespace}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": HUB_SA, "namespace": stage.hub_namespace}
                ],
            },
        ],
        log=LOG,
    )
    vision = stage.config().teams["vision"]
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        await until_allowed(hub, "create", "namespaces")
        with pytest.raises(ProvisioningError) as caught:
            await reconcile(
                hub,
                team_manifests(
                    vision, hub_namespace=stage.hub_namespace, hub_service_account=HUB_SA
                ),
                log=LOG,
            )
    message = str(caught.value)
    assert message.startswith(
        f"the hub's service account {stage.hub_namespace}:{HUB_SA} may not bind ClusterRole "
        f"{TEAM_CLUSTER_ROLE}, which it needs to create RoleBinding {stage.vision}/mlteams-hub; "
    )
    assert (caught.value.kind, caught.value.namespace) == ("RoleBinding", stage.vision)


async def test_check_ready_names_what_is_missing(kube: client.ApiClient, stage: Stage) -> None:
    await reconcile(kube, stage.cluster(provisioning=False), log=LOG)
    config = stage.config()
    objects = {
        (m["kind"], m["metadata"].get("namespace") or m["metadata"]["name"]): m
        for m in stage.teams(config)
    }
    async with await service_account_client(kube, stage.hub_namespace, HUB_SA) as hub:
        await until_allowed(hub, "get", "namespaces")
        assert await check_ready(hub, config) == [
            f"team nlp: namespace {stage.nlp} does not exist; apply the manifests printed by "
            "`mlteams-manifests --values <your values file>`, or set "
            "hub.config.MLTeams.provision to true.",
            f"team vision: namespace {stage.vision} does not exist; apply the manifests printed "
            "by `mlteams-manifests --values <your values file>`, or set "
            "hub.config.MLTeams.provision to true.",
        ]

        wrong_quota = dict(objects[("ResourceQuota", stage.nlp)])
        wrong_quota["spec"] = {"hard": {"requests.nvidia.com/gpu": "1", "limits.cpu": "8000m"}}
        await reconcile(
            kube,
            [objects[("Namespace", stage.nlp)], objects[("Namespace", stage.vision)], wrong_quota],
            log=LOG,
        )
        problems = await check_ready(hub, config)
        assert len(problems) == 2
        assert problems[0].startswith(
            f"team nlp: the hub may not create pods in namespace {stage.nlp}: "
            "RoleBinding mlteams-hub (to ClusterRole mlteams-hub-team)"
        )
        assert problems[1].startswith("team vision: the hub may not create pods in namespace")

        await reconcile(
            kube,
            [objects[("RoleBinding", stage.nlp)], objects[("RoleBinding", stage.vision)]],
            log=LOG,
        )
        await until_allowed(hub, "create", "pods", stage.vision)
        problems = await check_ready(hub, config)
        assert [problem.split("; ")[0] for problem in problems] == [
            f"team nlp: ResourceQuota {stage.nlp}/mlteams-quota allows "
            "requests.nvidia.com/gpu=1 but the configuration says 2",
            f"team nlp: ResourceQuota {stage.nlp}/mlteams-quota does not limit limits.memory "
            "(the configuration says 32Gi)",
            f"team vision: ResourceQuota mlteams-quota is missing in namespace {stage.vision}, "
            "so Kubernetes does not enforce the team's quota",
        ]

        await reconcile(kube, stage.teams(config), log=LOG)
        assert await check_ready(hub, config) == []
