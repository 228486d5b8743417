"""Evaluation Jobs on the rig: a frozen model scored in a Job in a fresh namespace.

The model is trained and saved in the test process, frozen into MinIO, and scored by
``python -m server_ext.evaluation`` in a Job the process kubelet runs from the notebook image's
Python; the Job sees only presigned URLs. A model that fails to predict and a model that runs past
its deadline give messages a data scientist understands; every run leaves neither a Job nor a
temporary object behind.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kubernetes_asyncio import client
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from devenv.cluster import LocalCluster
from devenv.object_store import ObjectStore as LocalObjectStore
from hub_ext.service.candidate import local_candidate
from hub_ext.service.evaluation import EvaluationFailed, run_evaluation
from hub_ext.service.freeze import Frozen, freeze
from hub_ext.service.object_store import ObjectStore
from tests.kube_helpers import eventually, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BUCKET = "mlteams-governed"
IMAGE = "mlteams/notebook:dev"


@pytest.fixture
async def store(object_store: LocalObjectStore) -> ObjectStore:
    root = object_store.root_credentials
    service_store = ObjectStore(object_store.endpoint_url, root.access_key, root.secret_key)
    await service_store.ensure_bucket(BUCKET)
    return service_store


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    return data.data.iloc[::5].reset_index(drop=True), data.target.iloc[::5]


async def _frozen(store: ObjectStore, model_dir: Path) -> Frozen:
    prefix = f"s3://{BUCKET}/vision/iris/{unique('p')}"
    return await freeze(await local_candidate(model_dir), store, prefix)


def _code_model(folder: Path, predict_body: str) -> Path:
    """An MLflow model from code whose ``predict`` runs ``predict_body``."""
    code = folder / "model_code.py"
    code.write_text(
        textwrap.dedent(
            """\
            import time

            import mlflow
            from mlflow.pyfunc import PythonModel


            class Model(PythonModel):
                def predict(self, context, model_input, params=None):
            """
        )
        + textwrap.indent(textwrap.dedent(predict_body), " " * 8)
        + "\n\nmlflow.models.set_model(Model())\n"
    )
    target = folder / "model"
    mlflow.pyfunc.save_model(str(target), python_model=str(code))
    return target


async def _evaluate(
    kube: client.ApiClient,
    store: ObjectStore,
    namespace: str,
    frozen: Frozen,
    features: pd.DataFrame,
    work: str,
    timeout_seconds: int = 300,
) -> list:
    return await run_evaluation(
        kube,
        store,
        namespace=namespace,
        image=IMAGE,
        frozen=frozen,
        features_csv=features.to_csv(index=False).encode(),
        work_prefix_uri=work,
        team="vision",
        model="iris",
        promotion_id=unique("promo"),
        timeout_seconds=timeout_seconds,
        cpu="500m",
        memory="1Gi",
    )


async def _left_behind(kube: client.ApiClient, store: ObjectStore, namespace: str, work: str):
    jobs = await client.BatchV1Api(kube).list_namespaced_job(namespace)
    return [j.metadata.name for j in jobs.items], await store.list(work + "/")


async def _nothing_left(
    kube: client.ApiClient, store: ObjectStore, namespace: str, work: str
) -> None:
    async def clean() -> bool:
        return await _left_behind(kube, store, namespace, work) == ([], [])

    await eventually(clean, timeout=60, what="the Job and the temporary objects to be deleted")


async def test_the_job_predicts_what_the_model_predicts(
    cluster: LocalCluster,
    kube: client.ApiClient,
    namespace: str,
    store: ObjectStore,
    tmp_path: Path,
    iris: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, labels = iris
    model = LogisticRegression(max_iter=500).fit(features, labels)
    model_dir = tmp_path / "model"
    mlflow.sklearn.save_model(
        model, str(model_dir), signature=infer_signature(features, model.predict(features))
    )
    frozen = await _frozen(store, model_dir)
    work = f"s3://{BUCKET}/work/{unique('eval')}"

    predictions = await _evaluate(kube, store, namespace, frozen, features, work)

    assert predictions == model.predict(features).tolist()
    await _nothing_left(kube, store, namespace, work)


async def test_a_model_that_raises_at_predict_fails_with_its_error(
    cluster: LocalCluster,
    kube: client.ApiClient,
    namespace: str,
    store: ObjectStore,
    tmp_path: Path,
    iris: tuple[pd.DataFrame, pd.Series],
) -> None:
    model_dir = _code_model(tmp_path, 'raise ValueError("this model cannot score iris rows")')
    frozen = await _frozen(store, model_dir)
    work = f"s3://{BUCKET}/work/{unique('eval')}"

    with pytest.raises(EvaluationFailed) as failed:
        await _evaluate(kube, store, namespace, frozen, iris[0], work)

    assert failed.value.reason == "failed"
    assert failed.value.message.startswith("the evaluation failed: the model failed to predict: ")
    assert "ValueError: this model cannot score iris rows" in failed.value.message
    await _nothing_left(kube, store, namespace, work)


async def test_a_model_past_its_deadline_gives_the_timeout_message(
    cluster: LocalCluster,
    kube: client.ApiClient,
    namespace: str,
    store: ObjectStore,
    tmp_path: Path,
    iris: tuple[pd.DataFrame, pd.Series],
) -> None:
    model_dir = _code_model(tmp_path, "time.sleep(600)\nreturn model_input")
    frozen = await _frozen(store, model_dir)
    work = f"s3://{BUCKET}/work/{unique('eval')}"

    with pytest.raises(EvaluationFailed) as failed:
        await _evaluate(kube, store, namespace, frozen, iris[0], work, timeout_seconds=8)

    assert failed.value.reason == "timeout"
    assert failed.value.message.startswith("the evaluation did not finish within 8 s")
    await _nothing_left(kube, store, namespace, work)
