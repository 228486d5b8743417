"""Blocking MLflow queries behind the REST API; called from a worker thread, never the loop."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server_ext import contract as env
from server_ext.server.api import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Page,
    dataset_inputs_of,
    logged_model_view,
    model_outputs_of,
    owns_run,
    run_summary,
)
from server_ext.server.reproduce import RunRecord, parse_environment

MAX_ARTIFACT_BYTES = 4 * 1024 * 1024
"""Environment artifacts larger than this are not read (they are not what the kernel writes)."""
MODELS_PAGE = 100
MAX_MODELS = 1000
"""The most logged models ``run_models`` lists for one run."""
ALREADY_ENDED = "this run has already ended"


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
    token = runs.token
    return {
        "runs": [run_summary(r, public_url) for r in runs],
        # MLflow's SQL store gives its tokens as bytes, its REST client as text
        "next_page_token": (token.decode() if isinstance(token, bytes) else token) or None,
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


@contextmanager
def run_access(run_id: str, action: str = "read") -> Iterator[None]:
    """MLflow's answers about run ``run_id`` that refuse the request, as ``NotFound`` (no such
    run) or ``Forbidden`` (the server's MLflow credentials may not ``action`` the run, or are
    not accepted)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"no MLflow run {run_id!r} on the team's tracking server") from None
        if exc.error_code == "PERMISSION_DENIED":
            raise Forbidden(f"your MLflow account may not {action} run {run_id!r}") from None
        if exc.error_code == "UNAUTHENTICATED":
            raise Forbidden(
                "MLflow did not accept this server's credentials: ask your admins to check "
                "your MLflow account"
            ) from None
        raise


def run_record(tracking_uri: str, run_id: str) -> RunRecord:
    """The run with its dataset inputs and environment artifacts, read with the server's
    (the user's) MLflow credentials. ``NotFound``/``Forbidden`` as MLflow answers."""
    client = _client(tracking_uri)
    with run_access(run_id):
        run = client.get_run(run_id)
    artifacts = _read_artifacts(client, run_id)
    return RunRecord(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        run_name=run.info.run_name,
        status=run.info.status,
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        datasets=dataset_inputs_of(run),
        requirements=artifacts.get(env.REQUIREMENTS_ARTIFACT),
        environment=parse_environment(artifacts.get(env.ENVIRONMENT_ARTIFACT)),
    )


def _logged_models(client: Any, experiment_id: str, run_id: str) -> dict[str, Any]:
    """The logged models whose source is the run, by id (up to ``MAX_MODELS``)."""
    found: dict[str, Any] = {}
    token = None
    while len(found) < MAX_MODELS:
        page = client.search_logged_models(
            experiment_ids=[experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
            max_results=MODELS_PAGE,
            page_token=token,
        )
        found.update((m.model_id, m) for m in page)
        token = page.token
        if not token:
            break
    return found


def run_models(tracking_uri: str, run_id: str, public_url: str = "") -> dict[str, Any]:
    """The models the run logged (MLflow 3's logged models: made by the run, or among its
    outputs), with their metrics. ``NotFound``/``Forbidden`` as MLflow answers."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    with run_access(run_id):
        run = client.get_run(run_id)
        experiment_id, checked_id = run.info.experiment_id, run.info.run_id
        models = _logged_models(client, experiment_id, checked_id)
    for model_id in model_outputs_of(run):
        if model_id in models or len(models) >= MAX_MODELS:
            continue
        try:
            models[model_id] = client.get_logged_model(model_id)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED"):
                raise
    return {
        "run_id": checked_id,
        "experiment_id": experiment_id,
        "models": [logged_model_view(m, public_url) for m in models.values()],
    }


def end_run(
    tracking_uri: str, run_id: str, team: str, user: str, public_url: str = ""
) -> dict[str, Any]:
    """End (FINISHED) a running run of ``user``: ``Forbidden`` for another user's run,
    ``Conflict`` for a run that is not running, ``NotFound`` for no run. The run as it is then."""
    client = _client(tracking_uri)
    with run_access(run_id, "end"):
        run = client.get_run(run_id)
        info, tags = run.info, run.data.tags
        mine = owns_run(team, user, run_user_id=info.user_id, tags=tags) or owns_run(
            team,
            user,
            run_user_id=None,
            tags={},
            experiment=client.get_experiment(info.experiment_id).name,
        )
        if not mine:
            raise Forbidden("this run is another user's: only its owner can end it")
        if info.status != "RUNNING":
            raise Conflict(ALREADY_ENDED)
        client.set_terminated(info.run_id, "FINISHED")
        return run_summary(client.get_run(info.run_id), public_url)
