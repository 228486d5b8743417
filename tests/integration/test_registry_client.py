"""The service's MLflow client (REST only) against a real MLflow server.

A run logged with MLflow's own client (a scikit-learn model with a signature, a dataset input,
params, metrics and tags) is read back as a candidate: its files through the artifact proxy,
flavors, signature and requirements from the model, and the run's facts. Governed registered
models, versions with an ``s3://`` source and aliases are made and removed through the REST API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from devenv.mlflow_server import MLflowServer
from devenv.procs import ProcessGroup, free_port
from hub_ext.service.registry import Registry, RegistryRefused, RegistryUnavailable
from tests.conftest import RIG_ID
from tests.kube_helpers import unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DOWNLOAD_ONLY = "registered_model_meta"
"""Written by MLflow's client into a downloaded ``runs:/`` model; not one of the logged files."""


@dataclass
class LoggedRun:
    server: MLflowServer
    run_id: str
    model_files: dict[str, bytes]
    dataset_digest: str


def _credentials(server: MLflowServer) -> tuple[str | None, str | None]:
    return getattr(server, "admin_username", None), getattr(server, "admin_password", None)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedRun]:
    state = tmp_path_factory.mktemp("registry-mlflow")
    procs = ProcessGroup(RIG_ID, state / "logs")
    server = MLflowServer(state, procs)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    try:
        server.start()
        username, password = _credentials(server)
        if username:
            os.environ["MLFLOW_TRACKING_USERNAME"] = username
            os.environ["MLFLOW_TRACKING_PASSWORD"] = password or ""
        yield _log_run(server, state)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        procs.stop_all()


def _log_run(server: MLflowServer, state: Path) -> LoggedRun:
    client = mlflow.MlflowClient(server.url)
    experiment = client.create_experiment(unique("registry"))
    features = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 4})
    labels = (features.a > 14).astype(int)
    model = LogisticRegression().fit(features, labels)
    helper = state / "helpers.py"
    helper.write_text("SCALE = 2\n")
    dataset = mlflow.data.from_pandas(
        features, source="s3://team-vision/train/iris.csv", name="iris-train"
    )
    mlflow.set_tracking_uri(server.url)
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("C", "1.0")
            mlflow.log_metric("accuracy", 0.97)
            mlflow.log_input(dataset, context="training")
            mlflow.set_tags(
                {
                    "mlflow.source.git.commit": "0123abcd",
                    "mlteams.image": "mlteams/notebook:dev",
                    "mlteams.team": "vision",
                    "mlteams.user": "v-alice",
                }
            )
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(features, model.predict(features)),
                code_paths=[str(helper)],
            )
        local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model"))
    finally:
        mlflow.set_tracking_uri(None)
    files = {
        p.relative_to(local).as_posix(): p.read_bytes()
        for p in local.rglob("*")
        if p.is_file() and p.name != DOWNLOAD_ONLY
    }
    return LoggedRun(server, run.info.run_id, files, dataset.digest)


@pytest.fixture
def registry(logged_run: LoggedRun) -> Registry:
    username, password = _credentials(logged_run.server)
    return Registry(logged_run.server.url, username, password, timeout=30)


async def test_candidate_has_the_models_files_and_the_runs_facts(
    registry: Registry, logged_run: LoggedRun
) -> None:
    candidate = await registry.candidate(logged_run.run_id, "model")

    assert [f.path for f in candidate.files] == sorted(logged_run.model_files)
    assert "code/helpers.py" in logged_run.model_files
    for path, content in logged_run.model_files.items():
        assert await candidate.read(path) == content
    assert {"python_function", "sklearn"} <= set(candidate.flavors)
    assert candidate.has_signature
    assert candidate.signature is not None and '"name": "a"' in candidate.signature["inputs"]
    assert candidate.requirements is not None and "scikit-learn" in candidate.requirements
    assert candidate.params == {"C": "1.0"}
    assert candidate.metrics == {"accuracy": 0.97}
    assert [(d.name, d.digest, d.source, d.context) for d in candidate.datasets] == [
        ("iris-train", logged_run.dataset_digest, "s3://team-vision/train/iris.csv", "training")
    ]
    assert candidate.git_commit == "0123abcd"
    assert candidate.image == "mlteams/notebook:dev"
    assert (candidate.team, candidate.user) == ("vision", "v-alice")
    assert candidate.model_id.startswith("m-")


async def test_a_run_without_a_model_at_the_path_names_the_paths_it_has(
    registry: Registry, logged_run: LoggedRun
) -> None:
    with pytest.raises(RegistryRefused) as refused:
        await registry.candidate(logged_run.run_id, "classifier")
    assert refused.value.status == 404
    assert refused.value.message == (
        f"run {logged_run.run_id} logged no model at 'classifier'; it has model"
    )


async def test_a_run_that_does_not_exist_is_a_404(registry: Registry) -> None:
    with pytest.raises(RegistryRefused) as refused:
        await registry.candidate("0" * 32)
    assert refused.value.status == 404
    assert refused.value.message == f"there is no run {'0' * 32!r} in MLflow"


async def test_governed_model_versions_and_aliases(
    registry: Registry, logged_run: LoggedRun
) -> None:
    name = f"governed.vision.{unique('iris')}"
    created = await registry.ensure_governed_model(name, "vision", "iris")
    assert created.tags == {
        "mlteams.governed": "true",
        "mlteams.team": "vision",
        "mlteams.model": "iris",
    }
    assert (await registry.ensure_governed_model(name, "vision", "iris")).name == name

    first = await registry.create_version(
        name,
        f"s3://mlteams-governed/vision/iris/{unique('p')}/model",
        run_id=logged_run.run_id,
        tags={"mlteams.artifact_sha256": "a" * 64},
        description="first",
    )
    second = await registry.create_version(name, "s3://mlteams-governed/vision/iris/p2/model")
    assert (first, second) == (1, 2)
    version = await registry.version(name, first)
    assert version.source.startswith("s3://mlteams-governed/vision/iris/")
    assert (version.run_id, version.description) == (logged_run.run_id, "first")
    assert version.tags == {"mlteams.artifact_sha256": "a" * 64}

    assert await registry.get_alias(name, "champion") is None
    await registry.set_alias(name, "champion", second)
    await registry.set_alias(name, "previous", first)
    assert await registry.get_alias(name, "champion") == second
    assert (await registry.registered_model(name)).aliases == {  # type: ignore[union-attr]
        "champion": second,
        "previous": first,
    }
    await registry.delete_alias(name, "previous")
    await registry.delete_alias(name, "previous")
    assert await registry.get_alias(name, "previous") is None

    await registry.delete_version(name, first)
    assert [v.version for v in await registry.versions(name)] == [second]
    with pytest.raises(RegistryRefused) as refused:
        await registry.version(name, first)
    assert refused.value.status == 404


async def test_a_server_that_does_not_answer_is_unavailable() -> None:
    registry = Registry(f"http://127.0.0.1:{free_port()}", "service", "secret", timeout=5)
    with pytest.raises(RegistryUnavailable, match="does not answer"):
        await registry.get_run("0" * 32)
    with pytest.raises(RegistryUnavailable):
        await registry.get_alias("governed.vision.iris", "champion")
