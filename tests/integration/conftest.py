from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from devenv.cluster import LocalCluster
from tests.kube_helpers import api_client, unique


@pytest.fixture
async def kube(cluster: LocalCluster) -> AsyncIterator[client.ApiClient]:
    api = await api_client(cluster.kubeconfig)
    async with api:
        yield api


@pytest.fixture
async def namespace(kube: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace, deleted (with its pods) after the test."""
    core = client.CoreV1Api(kube)
    name = unique("t")
    await core.create_namespace({"metadata": {"name": name}})
    yield name
    await core.delete_namespace(name)
