"""``python -m devenv.serving_curl --model iris``: a curl that gets predictions from a champion.

Reads the model's InferenceService from the local cluster (``KUBECONFIG``), waits until it is
Ready, and prints a ``curl`` with a V2 (Open Inference Protocol) request for a few of the demo's
iris rows: one input per column the model's signature names. The body is built by
``v2_request``; the command line by ``curl_command``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .paths import local_dir

EXAMPLE_ROWS: Mapping[str, Sequence[float]] = {
    "sepal length (cm)": (5.1, 6.4, 6.3),
    "sepal width (cm)": (3.5, 3.2, 3.3),
    "petal length (cm)": (1.4, 4.5, 6.0),
    "petal width (cm)": (0.2, 1.5, 2.5),
}
"""Three flowers of scikit-learn's iris set (one of each species), as the demo's dataset names
its columns."""


def v2_request(columns: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    rows = {len(values) for values in columns.values()}
    if len(rows) != 1:
        raise ValueError("every column needs the same number of rows")
    (count,) = rows
    return {
        "inputs": [
            {"name": name, "shape": [count], "datatype": "FP64", "data": list(values)}
            for name, values in columns.items()
        ]
    }


def curl_command(url: str, name: str, columns: Mapping[str, Sequence[float]]) -> str:
    body = json.dumps(v2_request(columns))
    target = f"{url.rstrip('/')}/v2/models/{name}/infer"
    return " ".join(
        [
            "curl",
            "-s",
            "-H",
            shlex.quote("Content-Type: application/json"),
            "-d",
            shlex.quote(body),
            shlex.quote(target),
        ]
    )


def ready_url(obj: Mapping[str, Any]) -> str | None:
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration") != generation:
        return None
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    url = status.get("url")
    return url if ready and isinstance(url, str) else None


async def wait_ready(kubeconfig: Path, namespace: str, model: str, wait: float) -> str:
    """The URL of the model's InferenceService once it is Ready; ``LookupError`` with the reason
    when it is not within ``wait`` seconds."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

    from hub_ext.service.kube import kube_client

    api = await kube_client(str(kubeconfig))
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                obj = await custom.get_namespaced_custom_object(
                    "serving.kserve.io", "v1beta1", namespace, "inferenceservices", model
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise LookupError(f"the cluster answered {exc.status}: {exc.reason}") from None
                reason = f"no InferenceService {model} in {namespace}: promote it first"
            else:
                url = ready_url(obj)
                if url:
                    return url
                conditions = (obj.get("status") or {}).get("conditions") or []
                reason = (
                    "; ".join(
                        f"{c.get('type')}={c.get('status')} {c.get('message') or ''}".strip()
                        for c in conditions
                    )
                    or "not reconciled yet"
                )
            if time.monotonic() >= deadline:
                raise LookupError(f"{model} is not Ready: {reason}")
            await asyncio.sleep(2)
    finally:
        await api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.serving_curl", description=__doc__)
    parser.add_argument("--model", required=True, help="the team's model name, such as iris")
    parser.add_argument("--namespace", default="team-vision", help="default: team-vision")
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=os.environ.get("KUBECONFIG") or local_dir() / "demo" / "cluster" / "kubeconfig",
        help="default: $KUBECONFIG, else the demo's",
    )
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for Ready")
    args = parser.parse_args(argv)
    try:
        url = asyncio.run(wait_ready(args.kubeconfig, args.namespace, args.model, args.wait))
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(curl_command(url, args.model, EXAMPLE_ROWS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
