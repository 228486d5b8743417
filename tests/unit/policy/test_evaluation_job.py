"""The evaluation Job as rendered: one try, a deadline, nothing to misuse."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy.evaluation_job import render_evaluation_job
from server_ext import contract

pytestmark = pytest.mark.unit


def job() -> dict[str, Any]:
    return render_evaluation_job(
        name="mlteams-eval-abc",
        namespace="team-vision",
        image="mlteams/notebook:dev",
        spec_url="http://store/spec?sig=1",
        team="vision",
        model="iris",
        promotion_id="a" * 32,
        timeout_seconds=300,
        cpu="1",
        memory="2Gi",
    )


def test_one_try_within_its_deadline_and_cleaned_up_after() -> None:
    spec = job()["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 300
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_the_pod_gets_no_token_no_service_links_and_only_the_spec_url() -> None:
    pod = job()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    (container,) = pod["containers"]
    assert container["env"] == [
        {"name": contract.EVALUATION_SPEC_URL, "value": "http://store/spec?sig=1"}
    ]
    assert container["command"] == ["python", "-m", "server_ext.evaluation"]
    assert container["image"] == "mlteams/notebook:dev"
    assert "volumeMounts" not in container and "volumes" not in pod
    assert (
        container["resources"]["requests"]
        == container["resources"]["limits"]
        == {
            "cpu": "1",
            "memory": "2Gi",
        }
    )


def test_labels_name_the_team_model_and_promotion_on_job_and_pod() -> None:
    rendered = job()
    pod_labels = rendered["spec"]["template"]["metadata"]["labels"]
    for labels in (rendered["metadata"]["labels"], pod_labels):
        assert labels[contract.TEAM_LABEL] == "vision"
        assert labels["mlteams.io/model"] == "iris"
        assert labels["mlteams.io/promotion"] == "a" * 32
        assert labels["app.kubernetes.io/component"] == "mlteams-evaluation"


def test_the_whole_job() -> None:
    labels = {
        "app.kubernetes.io/component": "mlteams-evaluation",
        "app.kubernetes.io/managed-by": "jupyterhub-mlteams",
        "mlteams.io/team": "vision",
        "mlteams.io/model": "iris",
        "mlteams.io/promotion": "a" * 32,
    }
    resources = {"cpu": "1", "memory": "2Gi"}
    assert job() == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "mlteams-eval-abc", "namespace": "team-vision", "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 300,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "evaluate",
                            "image": "mlteams/notebook:dev",
                            "command": ["python", "-m", "server_ext.evaluation"],
                            "env": [
                                {
                                    "name": "MLTEAMS_EVALUATION_SPEC_URL",
                                    "value": "http://store/spec?sig=1",
                                }
                            ],
                            "resources": {"requests": resources, "limits": resources},
                        }
                    ],
                },
            },
        },
    }
