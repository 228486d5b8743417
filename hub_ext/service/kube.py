"""The service's Kubernetes API client: the pod's service account in the hub's pod, else a
kubeconfig file (``KUBECONFIG``, or ``~/.kube/config``) on a developer's machine or the rig."""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config

IN_CLUSTER_VARIABLE = "KUBERNETES_SERVICE_HOST"


async def kube_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An API client; the caller closes it (``async with`` or ``await api.close()``).

    ``kubeconfig`` names a file to use; without it the in-cluster configuration is loaded when
    ``KUBERNETES_SERVICE_HOST`` is set, else the file ``KUBECONFIG`` names.
    """
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get(IN_CLUSTER_VARIABLE):
        config.load_incluster_config(client_configuration=configuration)
    else:
        await config.load_kube_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
            client_configuration=configuration,
        )
    return client.ApiClient(configuration=configuration)
