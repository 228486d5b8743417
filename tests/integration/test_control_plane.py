"""The rig's control plane is real Kubernetes: quota admission, scheduling and RBAC are its own."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from devenv.cluster import LocalCluster
from tests.kube_helpers import api_client, eventually, sleeper_pod

pytestmark = pytest.mark.integration


async def test_resource_quota_admission_rejects_second_gpu_pod(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_resource_quota(
        namespace,
        {"metadata": {"name": "gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "1"}}},
    )

    async def quota_ready():
        quota = await core.read_namespaced_resource_quota("gpus", namespace)
        return quota.status and quota.status.hard

    await eventually(quota_ready, what="quota status from the controller-manager")

    await core.create_namespaced_pod(namespace, sleeper_pod("first", gpus=1, tolerate_gpu=True))
    with pytest.raises(ApiException) as rejected:
        await core.create_namespaced_pod(
            namespace, sleeper_pod("second", gpus=1, tolerate_gpu=True)
        )
    assert rejected.value.status == 403
    assert "exceeded quota" in rejected.value.body
    assert "requests.nvidia.com/gpu=1" in rejected.value.body
    quota = await core.read_namespaced_resource_quota("gpus", namespace)
    assert quota.status.used["requests.nvidia.com/gpu"] == "1"


async def test_gpu_pod_with_toleration_is_scheduled_on_gpu_node_and_runs(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_pod(namespace, sleeper_pod("gpu", gpus=1, tolerate_gpu=True))

    async def running():
        pod = await core.read_namespaced_pod("gpu", namespace)
        return pod if pod.status.phase == "Running" else None

    pod = await eventually(running, what="GPU pod Running")
    assert pod.spec.node_name in {"gpu-0", "gpu-1"}
    assert pod.status.pod_ip.startswith("127.")


def _unschedulable(pod: client.V1Pod) -> client.V1PodCondition | None:
    for cond in pod.status.conditions or []:
        if (
            cond.type == "PodScheduled"
            and cond.status == "False"
            and cond.reason == "Unschedulable"
        ):
            return cond
    return None


async def test_gpu_pod_without_toleration_stays_pending(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_pod(namespace, sleeper_pod("no-toleration", gpus=1))

    async def unschedulable():
        return _unschedulable(await core.read_namespaced_pod("no-toleration", namespace))

    cond = await eventually(unschedulable, what="scheduler's Unschedulable condition")
    assert "untolerated taint" in cond.message
    pod = await core.read_namespaced_pod("no-toleration", namespace)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


async def test_pod_asking_more_gpus_than_any_node_has_stays_pending(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_pod(namespace, sleeper_pod("five", gpus=5, tolerate_gpu=True))

    async def unschedulable():
        return _unschedulable(await core.read_namespaced_pod("five", namespace))

    cond = await eventually(unschedulable, what="scheduler's Unschedulable condition")
    assert "Insufficient nvidia.com/gpu" in cond.message
    pod = await core.read_namespaced_pod("five", namespace)
    assert pod.status.phase == "Pending"


async def test_rbac_denies_service_account_without_binding(
    cluster: LocalCluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = await core.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"expirationSeconds": 600}}
    )

    cfg = client.Configuration()
    cfg.host = kube.configuration.host
    cfg.ssl_ca_cert = kube.configuration.ssl_ca_cert
    cfg.api_key = {"BearerToken": token.status.token}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration=cfg) as as_nobody:
        with pytest.raises(ApiException) as denied:
            await client.CoreV1Api(as_nobody).list_namespaced_pod(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body

    # the admin of the same cluster may list them: the 403 is authorization, not a broken client
    admin = await api_client(cluster.kubeconfig)
    async with admin:
        pods = await client.CoreV1Api(admin).list_namespaced_pod(namespace)
    assert pods.items == []
