"""The Kubernetes Job that evaluates a candidate model, rendered as a plain dict.

The Job runs the user's model code, so it gets nothing it could misuse: no service-account
token, no Service links, no credentials. It reads its spec, the frozen model and the features
through presigned URLs (``MLTEAMS_EVALUATION_SPEC_URL``) and writes its predictions the same way
(``python -m server_ext.evaluation`` in the user's image). One try, a deadline, and it cleans
itself up an hour after it ends.
"""

from __future__ import annotations

from typing import Any

from server_ext import contract

COMPONENT = "mlteams-evaluation"
PROMOTION_LABEL = "mlteams.io/promotion"
MODEL_LABEL = "mlteams.io/model"
TTL_AFTER_FINISHED_SECONDS = 3600
COMMAND = ("python", "-m", "server_ext.evaluation")


def render_evaluation_job(
    *,
    name: str,
    namespace: str,
    image: str,
    spec_url: str,
    team: str,
    model: str,
    promotion_id: str,
    timeout_seconds: int,
    cpu: str,
    memory: str,
) -> dict[str, Any]:
    """A ``batch/v1`` Job that predicts with the frozen model once, within ``timeout_seconds``."""
    labels = {
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": "jupyterhub-mlteams",
        contract.TEAM_LABEL: team,
        MODEL_LABEL: model,
        PROMOTION_LABEL: promotion_id,
    }
    resources = {"cpu": cpu, "memory": memory}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(timeout_seconds),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_SECONDS,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "evaluate",
                            "image": image,
                            "command": list(COMMAND),
                            "env": [{"name": contract.EVALUATION_SPEC_URL, "value": spec_url}],
                            "resources": {"requests": dict(resources), "limits": dict(resources)},
                        }
                    ],
                },
            },
        },
    }
