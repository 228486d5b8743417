"""Apply the per-team objects of ``hub_ext.policy.manifests`` to the cluster, or check them.

``reconcile`` creates what is missing and updates what drifted with server-side apply (field
manager ``jupyterhub-mlteams``); it never deletes anything. ``check_ready`` is for hubs that do
not provision: it lists, in words an admin can act on, what is missing. Permission and API errors
become ``ProvisioningError`` with a message that names the object, the missing permission and the
remedy.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from hub_ext.policy import MLTeamsConfig, Quota, Team, parse_cpu, parse_memory
from hub_ext.policy.manifests import (
    PROVISIONER_CLUSTER_ROLE,
    QUOTA_NAME,
    RBAC_API_VERSION,
    TEAM_CLUSTER_ROLE,
    TEAM_ROLE_BINDING,
    WATCH_CLUSTER_ROLE,
    Manifest,
    quota_hard,
)
from hub_ext.policy.quantities import QuantityError

FIELD_MANAGER = "jupyterhub-mlteams"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MANIFESTS_COMMAND = "mlteams-manifests --values <your values file>"

Change = Literal["created", "updated", "unchanged"]
Logger = logging.Logger | logging.LoggerAdapter


@dataclass(frozen=True)
class _Endpoint:
    api: type
    read: str
    patch: str
    namespaced: bool
    resource: str


_ENDPOINTS: Mapping[tuple[str, str], _Endpoint] = {
    ("v1", "Namespace"): _Endpoint(
        client.CoreV1Api, "read_namespace", "patch_namespace", False, "namespaces"
    ),
    ("v1", "ResourceQuota"): _Endpoint(
        client.CoreV1Api,
        "read_namespaced_resource_quota",
        "patch_namespaced_resource_quota",
        True,
        "resourcequotas",
    ),
    ("v1", "PersistentVolumeClaim"): _Endpoint(
        client.CoreV1Api,
        "read_namespaced_persistent_volume_claim",
        "patch_namespaced_persistent_volume_claim",
        True,
        "persistentvolumeclaims",
    ),
    (RBAC_API_VERSION, "RoleBinding"): _Endpoint(
        client.RbacAuthorizationV1Api,
        "read_namespaced_role_binding",
        "patch_namespaced_role_binding",
        True,
        "rolebindings",
    ),
    (RBAC_API_VERSION, "ClusterRole"): _Endpoint(
        client.RbacAuthorizationV1Api,
        "read_cluster_role",
        "patch_cluster_role",
        False,
        "clusterroles",
    ),
    (RBAC_API_VERSION, "ClusterRoleBinding"): _Endpoint(
        client.RbacAuthorizationV1Api,
        "read_cluster_role_binding",
        "patch_cluster_role_binding",
        False,
        "clusterrolebindings",
    ),
}
_TEAM_KINDS = ("Namespace", "ResourceQuota", "RoleBinding", "PersistentVolumeClaim")

_RBAC_DENIED = re.compile(
    r'[Uu]ser "(?P<user>[^"]+)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)
_ESCALATION = re.compile(
    r'[Uu]ser "(?P<user>[^"]+)".*?is attempting to grant RBAC permissions not currently held',
    re.DOTALL,
)
_SERVICE_ACCOUNT_USER = re.compile(r"^system:serviceaccount:(?P<namespace>[^:]+):(?P<name>[^:]+)$")


class ProvisioningError(RuntimeError):
    """The hub could not create, update or read a team's Kubernetes object."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.name = name
        self.namespace = namespace


@dataclass(frozen=True)
class AppliedObject:
    """One object reconcile applied, and what that changed."""

    kind: str
    name: str
    namespace: str | None
    change: Change

    def __str__(self) -> str:
        return f"{self.kind} {describe_name(self.name, self.namespace)}: {self.change}"


@dataclass(frozen=True)
class ReconcileReport:
    """What ``reconcile`` did, object by object, in the order it applied them."""

    objects: tuple[AppliedObject, ...] = ()

    def with_change(self, change: Change) -> tuple[AppliedObject, ...]:
        return tuple(item for item in self.objects if item.change == change)

    @property
    def created(self) -> tuple[AppliedObject, ...]:
        return self.with_change("created")

    @property
    def updated(self) -> tuple[AppliedObject, ...]:
        return self.with_change("updated")

    @property
    def unchanged(self) -> tuple[AppliedObject, ...]:
        return self.with_change("unchanged")

    @property
    def changed(self) -> bool:
        return any(item.change != "unchanged" for item in self.objects)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


def describe_name(name: str, namespace: str | None) -> str:
    return f"{namespace}/{name}" if namespace else name


async def reconcile(
    api_client: client.ApiClient, manifests: Iterable[Manifest], *, log: Logger
) -> ReconcileReport:
    """Create the missing objects and update the drifted ones, in order; delete nothing.

    Each object is read, then applied server-side with field manager ``jupyterhub-mlteams``,
    forcing ownership of the fields it sets; fields other managers set are left alone.
    Raises ``ProvisioningError`` at the first object that cannot be read or applied.
    """
    applied: list[AppliedObject] = []
    for manifest in manifests:
        item = await _apply(api_client, manifest)
        if item.change == "unchanged":
            log.debug("MLTeams provisioning: %s", item)
        else:
            log.info("MLTeams provisioning: %s", item)
        applied.append(item)
    report = ReconcileReport(tuple(applied))
    log.info("MLTeams provisioning: %s", report.summary())
    return report


async def _apply(api_client: client.ApiClient, manifest: Manifest) -> AppliedObject:
    kind = str(manifest.get("kind"))
    endpoint = _ENDPOINTS.get((str(manifest.get("apiVersion")), kind))
    if endpoint is None:
        raise ValueError(f"reconcile cannot apply {manifest.get('apiVersion')} {kind} objects")
    metadata = manifest.get("metadata") or {}
    name = metadata["name"]
    namespace = metadata.get("namespace") if endpoint.namespaced else None
    target = (name, namespace) if endpoint.namespaced else (name,)
    api = endpoint.api(api_client)
    try:
        before = await getattr(api, endpoint.read)(*target)
    except ApiException as exc:
        if exc.status != 404:
            raise api_error(exc, kind, name, namespace, "get") from exc
        before = None
    try:
        after = await getattr(api, endpoint.patch)(
            *target,
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY_CONTENT_TYPE,
        )
    except ApiException as exc:
        raise api_error(exc, kind, name, namespace, "patch" if before else "create") from exc
    change: Change
    if before is None:
        change = "created"
    elif after.metadata.resource_version != before.metadata.resource_version:
        change = "updated"
    else:
        change = "unchanged"
    return AppliedObject(kind, name, namespace, change)


def api_error(
    exc: ApiException, kind: str, name: str, namespace: str | None, verb: str
) -> ProvisioningError:
    """A ``ProvisioningError`` for an API error on one object, with what to do about it."""
    obj = f"{kind} {describe_name(name, namespace)}"
    status = _status(exc)
    said = status.get("message") or exc.reason or "no message"
    if exc.status == 403:
        message = _forbidden_message(said, obj, kind, verb)
    else:
        message = (
            f"the hub could not {verb} {obj}: the Kubernetes API answered "
            f"{exc.status} {exc.reason}: {said}"
        )
    return ProvisioningError(message, status=exc.status, kind=kind, name=name, namespace=namespace)


def _forbidden_message(said: str, obj: str, kind: str, verb: str) -> str:
    if "because it is being terminated" in said:
        return (
            f"cannot {verb} {obj}: its namespace is being deleted. Wait until the namespace is "
            f"gone, then restart the hub to create it again. Kubernetes said: {said}"
        )
    remedy = _remedy(kind)
    escalation = _ESCALATION.search(said)
    if escalation:
        who = describe_subject(escalation["user"])
        return (
            f"{who} may not bind ClusterRole {TEAM_CLUSTER_ROLE}, which it needs to create {obj}; "
            f"{remedy} Kubernetes said: {_first_line(said)}"
        )
    denied = _RBAC_DENIED.search(said)
    if denied:
        who = describe_subject(denied["user"])
        what = denied["resource"]
        if denied["group"]:
            what = f"{what}.{denied['group']}"
        where = "at the cluster scope"
        if denied["namespace"] and denied["resource"] != "namespaces":
            where = f"in namespace {denied['namespace']}"
        action = denied["verb"]
        if verb == "create" and action in {"create", "patch"}:
            action = "create"
            where += " (server-side apply needs both the create and patch verbs)"
        return (
            f"{who} may not {action} {what} {where}, which it needs for {obj}; "
            f"{remedy} Kubernetes said: {said}"
        )
    return f"the hub may not {verb} {obj}; {remedy} Kubernetes said: {said}"


def _remedy(kind: str) -> str:
    if kind in _TEAM_KINDS:
        return (
            f"grant it the ClusterRole {PROVISIONER_CLUSTER_ROLE} printed by "
            f"`{MANIFESTS_COMMAND} --provisioning`, or set hub.config.MLTeams.provision to "
            f"false and apply the manifests printed by `{MANIFESTS_COMMAND}` yourself."
        )
    return (
        "the hub does not manage cluster-wide RBAC; apply the cluster-scoped manifests printed "
        f"by `{MANIFESTS_COMMAND}` as a cluster admin."
    )


def describe_subject(user: str) -> str:
    """``system:serviceaccount:jupyterhub:hub`` -> ``the hub's service account jupyterhub:hub``."""
    account = _SERVICE_ACCOUNT_USER.match(user)
    if account:
        return f"the hub's service account {account['namespace']}:{account['name']}"
    return f'the hub (Kubernetes user "{user}")'


def _status(exc: ApiException) -> dict[str, Any]:
    body: Any = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"message": body.strip()[:500]} if body.strip() else {}
    return parsed if isinstance(parsed, dict) else {}


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


async def check_ready(
    api_client: client.ApiClient,
    config: MLTeamsConfig,
    *,
    quotas: Mapping[str, Quota] | None = None,
) -> list[str]:
    """What keeps the team namespaces from being ready for the hub; empty when nothing does.

    For each team: its namespace exists, its ResourceQuota exists and matches the configured
    (or, through ``quotas``, the effective) quota, the hub may create pods there, and the team
    folder's claim exists. Used when
    the hub does not provision; each message names the object and what to do.
    """
    problems: list[str] = []
    overrides = quotas or {}
    for name in sorted(config.teams):
        team = config.teams[name]
        problems.extend(await _check_team(api_client, team, overrides.get(name, team.quota)))
    return problems


async def _check_team(api_client: client.ApiClient, team: Team, quota: Quota) -> list[str]:
    core = client.CoreV1Api(api_client)
    ns = team.namespace
    where = f"team {team.name}:"
    fix = (
        f"apply the manifests printed by `{MANIFESTS_COMMAND}`, or set "
        "hub.config.MLTeams.provision to true."
    )
    try:
        await core.read_namespace(ns)
    except ApiException as exc:
        if exc.status == 404:
            return [f"{where} namespace {ns} does not exist; {fix}"]
        if exc.status != 403:
            raise api_error(exc, "Namespace", ns, None, "get") from exc
        return [
            f"{where} the hub may not read namespace {ns}: ClusterRole {WATCH_CLUSTER_ROLE} or "
            f"its ClusterRoleBinding is missing; {fix}"
        ]
    if not await _may_create_pods(api_client, ns):
        return [
            f"{where} the hub may not create pods in namespace {ns}: RoleBinding "
            f"{TEAM_ROLE_BINDING} (to ClusterRole {TEAM_CLUSTER_ROLE}) or that ClusterRole is "
            f"missing; {fix}"
        ]
    try:
        current = await core.read_namespaced_resource_quota(QUOTA_NAME, ns)
    except ApiException as exc:
        if exc.status == 404:
            return [
                f"{where} ResourceQuota {QUOTA_NAME} is missing in namespace {ns}, so "
                f"Kubernetes does not enforce the team's quota; {fix}"
            ]
        if exc.status != 403:
            raise api_error(exc, "ResourceQuota", QUOTA_NAME, ns, "get") from exc
        return [
            f"{where} the hub may not read ResourceQuotas in namespace {ns}: ClusterRole "
            f"{TEAM_CLUSTER_ROLE} is out of date; {fix}"
        ]
    hard = (current.spec.hard if current.spec else None) or {}
    problems = [
        f"{where} ResourceQuota {ns}/{QUOTA_NAME} {difference}; {fix}"
        for difference in quota_differences(hard, quota_hard(quota))
    ]
    folder = team.shared_folder
    if folder is not None and not await _claim_exists(core, folder.claim_name, ns):
        create = (
            fix
            if folder.create
            else "create it (bound to the team's shared storage) or remove shared_folder."
        )
        problems.append(
            f"{where} the team folder's PersistentVolumeClaim {ns}/{folder.claim_name} does not "
            f"exist, so the team's servers cannot start; {create}"
        )
    return problems


async def _claim_exists(core: client.CoreV1Api, name: str, namespace: str) -> bool:
    try:
        await core.read_namespaced_persistent_volume_claim(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise api_error(exc, "PersistentVolumeClaim", name, namespace, "get") from exc
    return True


def quota_differences(actual: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """How a quota's ``spec.hard`` differs from the expected one, comparing quantities."""
    out: list[str] = []
    for key, want in expected.items():
        have = actual.get(key)
        if have is None:
            out.append(f"does not limit {key} (the configuration says {want})")
        elif not _same_quantity(key, have, want):
            out.append(f"allows {key}={have} but the configuration says {want}")
    return out


def _same_quantity(key: str, have: str, want: str) -> bool:
    parse = parse_cpu if key.endswith(".cpu") else parse_memory
    try:
        return parse(have) == parse(want)
    except QuantityError:
        return have == want


async def _may_create_pods(api_client: client.ApiClient, namespace: str) -> bool:
    review = client.V1SelfSubjectAccessReview(
        api_version="authorization.k8s.io/v1",
        kind="SelfSubjectAccessReview",
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb="create", resource="pods"
            )
        ),
    )
    answer = await client.AuthorizationV1Api(api_client).create_self_subject_access_review(review)
    return bool(answer.status and answer.status.allowed)
