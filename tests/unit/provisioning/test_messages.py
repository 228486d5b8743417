"""Kubernetes API errors become messages an admin can act on; quota drift is described in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes_asyncio.client.rest import ApiException

from hub_ext.provisioning.apply import (
    AppliedObject,
    ReconcileReport,
    api_error,
    describe_subject,
    quota_differences,
)

pytestmark = pytest.mark.unit


def api_exception(status: int, reason: str, message: str | None, raw: str | None = None):
    exc = ApiException(status=status, reason=reason)
    body = raw if raw is not None else json.dumps({"kind": "Status", "message": message})
    exc.body = body.encode()
    return exc


def forbidden(message: str) -> ApiException:
    return api_exception(403, "Forbidden", message)


def test_rbac_denial_names_subject_permission_object_and_remedy() -> None:
    exc = forbidden(
        'resourcequotas "mlteams-quota" is forbidden: User "system:serviceaccount:jupyterhub:hub" '
        'cannot get resource "resourcequotas" in API group "" in the namespace "team-vision"'
    )
    error = api_error(exc, "ResourceQuota", "mlteams-quota", "team-vision", "get")
    message = str(error)
    assert message.startswith(
        "the hub's service account jupyterhub:hub may not get resourcequotas in namespace "
        "team-vision, which it needs for ResourceQuota team-vision/mlteams-quota; grant it the "
        "ClusterRole mlteams-hub-provisioner printed by "
        "`mlteams-manifests --values <your values file> --provisioning`, or set "
        "hub.config.MLTeams.provision to false and apply the manifests printed by "
        "`mlteams-manifests --values <your values file>` yourself."
    )
    assert message.endswith('in the namespace "team-vision"')
    assert (error.status, error.kind, error.name, error.namespace) == (
        403,
        "ResourceQuota",
        "mlteams-quota",
        "team-vision",
    )


def test_creating_says_create_even_when_kubernetes_checked_patch_first() -> None:
    exc = forbidden(
        'namespaces "team-vision" is forbidden: User "system:serviceaccount:jupyterhub:hub" '
        'cannot patch resource "namespaces" in API group "" in the namespace "team-vision"'
    )
    message = str(api_error(exc, "Namespace", "team-vision", None, "create"))
    assert message.startswith(
        "the hub's service account jupyterhub:hub may not create namespaces at the cluster scope "
        "(server-side apply needs both the create and patch verbs), which it needs for "
        "Namespace team-vision;"
    )


def test_group_is_named_for_rbac_resources() -> None:
    exc = forbidden(
        'rolebindings.rbac.authorization.k8s.io "mlteams-hub" is forbidden: User "alice" cannot '
        'patch resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace '
        '"team-vision"'
    )
    message = str(api_error(exc, "RoleBinding", "mlteams-hub", "team-vision", "patch"))
    assert message.startswith(
        'the hub (Kubernetes user "alice") may not patch rolebindings.rbac.authorization.k8s.io '
        "in namespace team-vision, which it needs for RoleBinding team-vision/mlteams-hub;"
    )


def test_missing_bind_permission_is_named() -> None:
    exc = forbidden(
        'rolebindings.rbac.authorization.k8s.io "mlteams-hub" is forbidden: user '
        '"system:serviceaccount:jupyterhub:hub" (groups=["system:serviceaccounts" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["create"]}'
    )
    message = str(api_error(exc, "RoleBinding", "mlteams-hub", "team-vision", "create"))
    assert message.startswith(
        "the hub's service account jupyterhub:hub may not bind ClusterRole mlteams-hub-team, "
        "which it needs to create RoleBinding team-vision/mlteams-hub; grant it the ClusterRole "
        "mlteams-hub-provisioner"
    )
    assert "{APIGroups" not in message


def test_cluster_scoped_rbac_is_for_the_cluster_admin() -> None:
    exc = forbidden(
        'clusterroles.rbac.authorization.k8s.io "mlteams-hub-team" is forbidden: User '
        '"system:serviceaccount:jupyterhub:hub" cannot get resource "clusterroles" in API group '
        '"rbac.authorization.k8s.io" at the cluster scope'
    )
    message = str(api_error(exc, "ClusterRole", "mlteams-hub-team", None, "get"))
    assert "at the cluster scope, which it needs for ClusterRole mlteams-hub-team" in message
    assert "the hub does not manage cluster-wide RBAC" in message


def test_terminating_namespace_says_to_wait() -> None:
    exc = forbidden(
        'resourcequotas "mlteams-quota" is forbidden: unable to create new content in namespace '
        "team-vision because it is being terminated"
    )
    message = str(api_error(exc, "ResourceQuota", "mlteams-quota", "team-vision", "create"))
    assert message.startswith(
        "cannot create ResourceQuota team-vision/mlteams-quota: its namespace is being deleted."
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            api_exception(422, "Unprocessable Entity", 'ResourceQuota "q" is invalid: bad'),
            "the hub could not create ResourceQuota ns/q: the Kubernetes API answered 422 "
            'Unprocessable Entity: ResourceQuota "q" is invalid: bad',
        ),
        (
            api_exception(500, "Internal Server Error", None, raw="etcd unavailable"),
            "the hub could not create ResourceQuota ns/q: the Kubernetes API answered 500 "
            "Internal Server Error: etcd unavailable",
        ),
        (
            api_exception(403, "Forbidden", None, raw=""),
            "the hub may not create ResourceQuota ns/q; grant it the ClusterRole",
        ),
    ],
)
def test_other_errors_keep_what_kubernetes_said(exc: ApiException, expected: str) -> None:
    assert str(api_error(exc, "ResourceQuota", "q", "ns", "create")).startswith(expected)


@pytest.mark.parametrize(
    ("user", "described"),
    [
        ("system:serviceaccount:jupyterhub:hub", "the hub's service account jupyterhub:hub"),
        ("kubernetes-admin", 'the hub (Kubernetes user "kubernetes-admin")'),
        (
            "system:serviceaccount:broken",
            'the hub (Kubernetes user "system:serviceaccount:broken")',
        ),
    ],
)
def test_describe_subject(user: str, described: str) -> None:
    assert describe_subject(user) == described


def test_quota_differences_compare_quantities_not_text() -> None:
    expected = {"requests.nvidia.com/gpu": "8", "limits.cpu": "96", "limits.memory": "768Gi"}
    same = {"requests.nvidia.com/gpu": "8", "limits.cpu": "96000m", "limits.memory": "824633720832"}
    assert quota_differences({**same, "count/pods": "10"}, expected) == []
    assert quota_differences({"requests.nvidia.com/gpu": "4", "limits.cpu": "1"}, expected) == [
        "allows requests.nvidia.com/gpu=4 but the configuration says 8",
        "allows limits.cpu=1 but the configuration says 96",
        "does not limit limits.memory (the configuration says 768Gi)",
    ]


def test_report_counts_and_summary() -> None:
    report = ReconcileReport(
        (
            AppliedObject("Namespace", "team-a", None, "created"),
            AppliedObject("ResourceQuota", "mlteams-quota", "team-a", "updated"),
            AppliedObject("RoleBinding", "mlteams-hub", "team-a", "unchanged"),
        )
    )
    assert report.changed
    assert report.summary() == "1 created, 1 updated, 1 unchanged"
    assert str(report.updated[0]) == "ResourceQuota team-a/mlteams-quota: updated"
    assert not ReconcileReport((report.objects[2],)).changed


def test_admin_guide_shows_the_real_message() -> None:
    guide = Path(__file__).resolve().parents[3] / "docs" / "admin" / "provisioning.md"
    exc = forbidden(
        'namespaces "team-vision" is forbidden: User "system:serviceaccount:jupyterhub:hub" '
        'cannot patch resource "namespaces" in API group "" in the namespace "team-vision"'
    )
    message = str(api_error(exc, "Namespace", "team-vision", None, "create"))
    assert f"```text\n{message}\n```" in guide.read_text()
