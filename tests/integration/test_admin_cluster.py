"""The admin pages' view of the cluster on the real apiserver: the servers' pods kept in memory by
the watch (added, changed, deleted; other pods left out), and listed directly when asked fresh or
before the watch has started."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from kubernetes_asyncio import client

from devenv.cluster import LocalCluster
from hub_ext.service.admin.cluster import AdminCluster
from hub_ext.service.kube import kube_client
from tests.kube_helpers import eventually, sleeper_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def server_pod(name: str, gpus: int) -> dict[str, Any]:
    pod = sleeper_pod(name, gpus=gpus, tolerate_gpu=True)
    pod["metadata"]["labels"] = {"component": "singleuser-server", "mlteams.io/team": "vision"}
    pod["metadata"]["annotations"] = {"mlteams.io/user": "ana", "mlteams.io/server": "ana/"}
    return pod


def names(found: dict[str, list[dict[str, Any]] | None], namespace: str) -> set[str]:
    return {pod["metadata"]["name"] for pod in found[namespace] or ()}


async def test_the_servers_pods_are_kept_in_memory_by_the_watch(
    cluster: LocalCluster, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_pod(namespace, server_pod("jupyter-ana", 1))
    await core.create_namespaced_pod(namespace, sleeper_pod("not-a-server"))
    admin = AdminCluster(connect=partial(kube_client, str(cluster.kubeconfig)))
    try:
        # before the watch: listed, servers only
        listed = await admin.pods([namespace])
        assert names(listed, namespace) == {"jupyter-ana"}
        assert await admin.watch() is True

        async def seen() -> set[str] | None:
            found = names(await admin.pods([namespace]), namespace)
            return found or None

        assert await eventually(seen, what="the pod in memory") == {"jupyter-ana"}
        await core.create_namespaced_pod(namespace, server_pod("jupyter-bo", 2))

        async def both() -> bool:
            return names(await admin.pods([namespace]), namespace) == {"jupyter-ana", "jupyter-bo"}

        assert await eventually(both, what="the new pod in memory")
        await core.delete_namespaced_pod("jupyter-ana", namespace, grace_period_seconds=0)

        async def gone() -> bool:
            return names(await admin.pods([namespace]), namespace) == {"jupyter-bo"}

        assert await eventually(gone, what="the deleted pod gone from memory")
        # a namespace with no server is an empty list, not unknown; fresh asks the API
        assert (await admin.pods(["kube-system"]))["kube-system"] == []
        fresh = await admin.pods([namespace], fresh=True)
        assert names(fresh, namespace) <= {"jupyter-ana", "jupyter-bo"}
        assert "jupyter-bo" in names(fresh, namespace)
    finally:
        await admin.close()


async def test_a_cluster_that_does_not_answer_gives_unknown_not_an_error(tmp_path: Any) -> None:
    missing = tmp_path / "kubeconfig"
    missing.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: k, user: {token: t}}]\n"
        "contexts: [{name: k, context: {cluster: k, user: k}}]\ncurrent-context: k\n"
    )
    admin = AdminCluster(connect=partial(kube_client, str(missing)), timeout=2)
    try:
        assert await admin.watch() is False
        assert await admin.pods(["team-vision"]) == {"team-vision": None}
    finally:
        await admin.close()
