"""Blocking MLflow queries behind the REST API; called from a worker thread, never the loop."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from server_ext import contract as env
from server_ext.server.api import BadRequest, Forbidden, NotFound, Page, run_link, run_summary
from server_ext.server.reproduce import DatasetInput, RunRecord, parse_environment

MAX_ARTIFACT_BYTES = 4 * 1024 * 1024
"""Environment artifacts larger than this are not read (they are not what the kernel writes)."""


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def find_experiment(tracking_uri: str, name: str) -> dict[str, Any] | None:
    experiment = _client(tracking_uri).get_experiment_by_name(name)
    if experiment is None:
        return None
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "lifecycle_stage": experiment.lifecycle_stage,
    }


def ensure_experiment(tracking_uri: str, name: str, tags: dict[str, str]) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            client.create_experiment(name, tags=tags)
        except MlflowException:
            pass
    result = find_experiment(tracking_uri, name)
    assert result is not None
    return result


def list_runs(
    tracking_uri: str, experiment_id: str, page: Page, public_url: str = ""
) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        runs = client.search_runs(
            [experiment_id],
            max_results=page.size,
            order_by=["attributes.start_time DESC"],
            page_token=page.token,
        )
    except MlflowException as exc:
        if page.token and exc.error_code == "INVALID_PARAMETER_VALUE":
            raise BadRequest("page_token is not a token returned by this API") from None
        raise
    return {
        "runs": [
            run_summary(r, run_link(public_url, r.info.experiment_id, r.info.run_id)) for r in runs
        ],
        "next_page_token": runs.token or None,
    }


def _read_artifacts(client: Any, run_id: str) -> dict[str, str]:
    """The environment artifacts of the run that exist, by path."""
    wanted = {env.REQUIREMENTS_ARTIFACT, env.ENVIRONMENT_ARTIFACT}
    listed = client.list_artifacts(run_id, env.ENVIRONMENT_DIR)
    present = [a.path for a in listed if a.path in wanted and not a.is_dir]
    sizes = {a.path: a.file_size or 0 for a in listed}
    found = {}
    with tempfile.TemporaryDirectory(prefix="mlteams-reproduce-") as tmp:
        for path in present:
            if sizes[path] > MAX_ARTIFACT_BYTES:
                continue
            local = client.download_artifacts(run_id, path, tmp)
            found[path] = Path(local).read_text(errors="replace")
    return found


def run_record(tracking_uri: str, run_id: str) -> RunRecord:
    """The run with its dataset inputs and environment artifacts, read with the server's
    (the user's) MLflow credentials. ``NotFound``/``Forbidden`` as MLflow answers."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"no MLflow run {run_id!r} on the team's tracking server") from None
        if exc.error_code == "PERMISSION_DENIED":
            raise Forbidden(f"your MLflow account may not read run {run_id!r}") from None
        if exc.error_code == "UNAUTHENTICATED":
            raise Forbidden(
                "MLflow did not accept this server's credentials: ask your admins to check "
                "your MLflow account"
            ) from None
        raise
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    datasets = [
        DatasetInput(
            name=i.dataset.name,
            digest=i.dataset.digest,
            source_type=i.dataset.source_type,
            source=i.dataset.source,
            tags={t.key: t.value for t in i.tags},
        )
        for i in inputs
    ]
    artifacts = _read_artifacts(client, run_id)
    return RunRecord(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        run_name=run.info.run_name,
        status=run.info.status,
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        datasets=datasets,
        requirements=artifacts.get(env.REQUIREMENTS_ARTIFACT),
        environment=parse_environment(artifacts.get(env.ENVIRONMENT_ARTIFACT)),
    )
