"""The Kubernetes objects each team needs, rendered as plain dicts: no Kubernetes client here.

Per team: its Namespace, a ResourceQuota, a RoleBinding that lets the hub's service account do
its namespaced work there, and the claim of the team folder when the hub is to create it. Once
per cluster: the ClusterRoles those bindings refer to, and the ClusterRoleBindings for the hub's
cluster-wide reads and, optionally, for provisioning.

``hub_ext.provisioning.apply`` applies these objects from the hub; ``mlteams-manifests``
prints them for GitOps. ``docs/admin/provisioning.md`` explains each RBAC rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from hub_ext.policy import (
    GPU_RESOURCE,
    TEAM_LABEL,
    MLTeamsConfig,
    Quota,
    Team,
    format_cpu,
    format_memory,
)

Manifest = dict[str, Any]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "jupyterhub-mlteams"
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"

QUOTA_NAME = "mlteams-quota"
TEAM_ROLE_BINDING = "mlteams-hub"
TEAM_CLUSTER_ROLE = "mlteams-hub-team"
WATCH_CLUSTER_ROLE = "mlteams-hub-watch"
PROVISIONER_CLUSTER_ROLE = "mlteams-hub-provisioner"

DEFAULT_HUB_NAMESPACE = "jupyterhub"
DEFAULT_HUB_SERVICE_ACCOUNT = "hub"

GPU_QUOTA_KEY = f"requests.{GPU_RESOURCE}"
CPU_QUOTA_KEY = "limits.cpu"
MEMORY_QUOTA_KEY = "limits.memory"
STORAGE_QUOTA_KEY = "requests.storage"
CLAIMS_QUOTA_KEY = "persistentvolumeclaims"

TEAM_RULES: tuple[Manifest, ...] = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "create", "delete"]},
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims"],
        "verbs": ["get", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["get"]},
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {
        "apiGroups": ["serving.kserve.io"],
        "resources": ["inferenceservices"],
        "verbs": ["get", "create", "patch", "delete"],
    },
)
"""What the hub does inside a team namespace, granted there only (through the team RoleBinding).

- pods get/create/delete: start and stop users' servers (KubeSpawner never patches or
  updates a pod).
- persistentvolumeclaims get/create/delete: users' home volumes; ``get`` when the claim exists
  already, ``delete`` when a user is deleted with ``delete_pvc``.
- resourcequotas get: read the team's quota at start and show its usage.
- jobs (batch) get/list/watch/create/delete: the mlteams service scores a model offered for
  promotion in a Job in the model's team namespace, follows it and deletes it afterwards.
- inferenceservices (serving.kserve.io) get/create/patch/delete: the mlteams service applies the
  InferenceService of a team's champion (server-side apply: ``patch``, which creates a missing
  object, so also ``create``), reads its state, and removes one it created when a promotion is
  undone. Granting it on a cluster without KServe is harmless.
"""

WATCH_RULES: tuple[Manifest, ...] = (
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
)
"""What the hub reads across the cluster.

- pods, events list/watch: KubeSpawner's shared reflectors watch every team namespace with one
  connection each; the GPU ledger and the spawn progress page come from them.
- namespaces get: the start-up check tells a missing team namespace from a missing RoleBinding.
"""

PROVISIONER_RULES: tuple[Manifest, ...] = (
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["get", "create", "patch"]},
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims"],
        "verbs": ["get", "create", "patch"],
    },
    {"apiGroups": [RBAC_GROUP], "resources": ["rolebindings"], "verbs": ["get", "create", "patch"]},
    {
        "apiGroups": [RBAC_GROUP],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": [TEAM_CLUSTER_ROLE],
    },
)
"""What the hub needs to create and update the per-team objects itself (provisioning on): each
team's Namespace, ResourceQuota, RoleBinding and team folder claim.

Objects are applied server-side (``patch``, which creates a missing object and so also needs
``create``) after a ``get``. Kubernetes lets a subject create a RoleBinding only to a role whose
permissions it holds or that it may ``bind``; ``bind`` is limited to the team ClusterRole, so the
hub can hand out nothing else. Nothing is ever deleted, so no ``delete`` verb.
"""


def hub_subject(hub_namespace: str, hub_service_account: str) -> Manifest:
    """The RBAC subject of the hub's service account."""
    return {"kind": "ServiceAccount", "name": hub_service_account, "namespace": hub_namespace}


def cluster_role_binding_name(role: str, hub_namespace: str) -> str:
    """The ClusterRoleBinding of ``role`` for the hub in ``hub_namespace``.

    Named after the hub's namespace so that two hubs in one cluster keep separate bindings.
    """
    return f"{role}-{hub_namespace}"


def quota_hard(quota: Quota) -> dict[str, str]:
    """The ``spec.hard`` of a team's ResourceQuota.

    GPUs are an extended resource, which Kubernetes quotas only by ``requests.``; a GPU pod's
    request always equals its limit. CPU and memory are quota'd on ``limits.``, because profiles
    set limits and the ledger counts them; Kubernetes then requires every container in the
    namespace to declare those limits.
    """
    hard = {GPU_QUOTA_KEY: str(quota.gpus)}
    if quota.cpu is not None:
        hard[CPU_QUOTA_KEY] = format_cpu(quota.cpu)
    if quota.memory is not None:
        hard[MEMORY_QUOTA_KEY] = format_memory(quota.memory)
    if quota.storage is not None:
        hard[STORAGE_QUOTA_KEY] = format_memory(quota.storage)
    if quota.claims is not None:
        hard[CLAIMS_QUOTA_KEY] = str(quota.claims)
    return hard


def team_folder_claim(team: Team, labels: Mapping[str, str] | None = None) -> Manifest | None:
    """The PersistentVolumeClaim of the team's shared folder, when the hub is to create it."""
    folder = team.shared_folder
    if folder is None or not folder.create:
        return None
    spec: Manifest = {
        "accessModes": list(folder.access_modes),
        "resources": {"requests": {"storage": format_memory(folder.capacity)}},
    }
    if folder.storage_class is not None:
        spec["storageClassName"] = folder.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": folder.claim_name,
            "namespace": team.namespace,
            "labels": {**(labels or {}), TEAM_LABEL: team.name},
        },
        "spec": spec,
    }


def cluster_manifests(
    *,
    hub_namespace: str = DEFAULT_HUB_NAMESPACE,
    hub_service_account: str = DEFAULT_HUB_SERVICE_ACCOUNT,
    labels: Mapping[str, str] | None = None,
    provisioning: bool = False,
) -> list[Manifest]:
    """The cluster-scoped RBAC objects, installed once by a cluster admin.

    With ``provisioning`` also the ClusterRole and binding that let the hub create and update
    each team's objects itself.
    """
    common = _labels(labels)
    subject = hub_subject(hub_namespace, hub_service_account)
    out = [
        _cluster_role(TEAM_CLUSTER_ROLE, TEAM_RULES, common),
        _cluster_role(WATCH_CLUSTER_ROLE, WATCH_RULES, common),
        _cluster_role_binding(WATCH_CLUSTER_ROLE, hub_namespace, subject, common),
    ]
    if provisioning:
        out.append(_cluster_role(PROVISIONER_CLUSTER_ROLE, PROVISIONER_RULES, common))
        out.append(_cluster_role_binding(PROVISIONER_CLUSTER_ROLE, hub_namespace, subject, common))
    return out


def team_manifests(
    team: Team,
    *,
    hub_namespace: str = DEFAULT_HUB_NAMESPACE,
    hub_service_account: str = DEFAULT_HUB_SERVICE_ACCOUNT,
    labels: Mapping[str, str] | None = None,
    quota: Quota | None = None,
) -> list[Manifest]:
    """One team's Namespace, ResourceQuota, RoleBinding and, when the hub creates it, the team
    folder's claim, in the order they must be applied (the claim counts against the quota).

    ``quota`` replaces the team's configured quota (an admin's run-time override).
    """
    team_labels = {**_labels(labels), TEAM_LABEL: team.name}
    namespace = team.namespace
    folder = team_folder_claim(team, _labels(labels))
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": dict(team_labels)},
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": QUOTA_NAME, "namespace": namespace, "labels": dict(team_labels)},
            "spec": {"hard": quota_hard(quota or team.quota)},
        },
        {
            "apiVersion": RBAC_API_VERSION,
            "kind": "RoleBinding",
            "metadata": {
                "name": TEAM_ROLE_BINDING,
                "namespace": namespace,
                "labels": dict(team_labels),
            },
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": TEAM_CLUSTER_ROLE},
            "subjects": [hub_subject(hub_namespace, hub_service_account)],
        },
        *([folder] if folder is not None else []),
    ]


def render_team_manifests(
    config: MLTeamsConfig,
    *,
    hub_namespace: str = DEFAULT_HUB_NAMESPACE,
    hub_service_account: str = DEFAULT_HUB_SERVICE_ACCOUNT,
    labels: Mapping[str, str] | None = None,
    cluster_scoped: bool = True,
    provisioning: bool = False,
    quotas: Mapping[str, Quota] | None = None,
) -> list[Manifest]:
    """Every object the configuration needs, in a stable order that can be applied as is.

    The cluster-scoped RBAC comes first (left out when ``cluster_scoped`` is false: the hub
    itself never manages it), then each team, by name: Namespace, ResourceQuota, RoleBinding and
    the team folder's claim.
    ``quotas`` maps team names to effective quotas that replace the configured ones.
    """
    out: list[Manifest] = []
    if cluster_scoped:
        out.extend(
            cluster_manifests(
                hub_namespace=hub_namespace,
                hub_service_account=hub_service_account,
                labels=labels,
                provisioning=provisioning,
            )
        )
    overrides = quotas or {}
    for name in sorted(config.teams):
        out.extend(
            team_manifests(
                config.teams[name],
                hub_namespace=hub_namespace,
                hub_service_account=hub_service_account,
                labels=labels,
                quota=overrides.get(name),
            )
        )
    return out


def to_yaml(manifests: Iterable[Mapping[str, Any]]) -> str:
    """The manifests as one multi-document YAML stream, keys in the order they were built."""
    return yaml.safe_dump_all(
        [_plain(manifest) for manifest in manifests],
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
    )


def _labels(extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**(extra or {}), MANAGED_BY_LABEL: MANAGED_BY}


def _cluster_role(name: str, rules: Iterable[Manifest], labels: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(labels)},
        "rules": [_plain(rule) for rule in rules],
    }


def _cluster_role_binding(
    role: str, hub_namespace: str, subject: Manifest, labels: Mapping[str, str]
) -> Manifest:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": cluster_role_binding_name(role, hub_namespace),
            "labels": dict(labels),
        },
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [dict(subject)],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
