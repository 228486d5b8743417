"""KServe's CRDs and its MLServer ClusterServingRuntime, installed into the rig's apiserver.

The files in ``devenv/kserve/`` are KServe's own, unchanged. Each is created, or replaced when it
exists, never applied client-side: the InferenceService CRD is about 2 MB, far over the 256 KiB a
``last-applied-configuration`` annotation may hold. The CRDs must be Established before the
runtime is created, and before anything applies an InferenceService.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from ..kubeapi import ApiError, KubeAPI
from ..paths import REPO_ROOT

KSERVE_DIR = REPO_ROOT / "devenv" / "kserve"
CRD_FILES = (
    "serving.kserve.io_inferenceservices.yaml",
    "serving.kserve.io_servingruntimes.yaml",
    "serving.kserve.io_clusterservingruntimes.yaml",
)
RUNTIME_FILE = "kserve-mlserver.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CLUSTER_RUNTIMES_PATH = "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes"
REQUEST_TIMEOUT = 60


def load(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path) as fh:
        return dict(yaml.load(fh, Loader=loader))


def create_or_replace(api: KubeAPI, collection: str, body: dict[str, Any]) -> None:
    """Create ``body`` in ``collection``; when it exists, replace it (same resourceVersion)."""
    try:
        api.request("POST", collection, body, timeout=REQUEST_TIMEOUT)
        return
    except ApiError as exc:
        if exc.status != 409:
            raise
    path = f"{collection}/{body['metadata']['name']}"
    current = api.get(path)
    replacement = dict(body, metadata=dict(body["metadata"]))
    replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    api.request("PUT", path, replacement, timeout=REQUEST_TIMEOUT)


def established(crd: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


def install(api: KubeAPI, timeout: float = 60, kserve_dir: Path = KSERVE_DIR) -> list[str]:
    """Install the CRDs and the ClusterServingRuntime; the names of the CRDs installed."""
    names = []
    for file in CRD_FILES:
        crd = load(kserve_dir / file)
        create_or_replace(api, CRD_PATH, crd)
        names.append(str(crd["metadata"]["name"]))
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if not established(api.get(f"{CRD_PATH}/{n}"))]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
        if pending:
            time.sleep(0.2)
    runtime = load(kserve_dir / RUNTIME_FILE)
    while True:
        try:
            create_or_replace(api, CLUSTER_RUNTIMES_PATH, runtime)
            return names
        except ApiError as exc:
            # the new resource may take a moment to be served after Established
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
