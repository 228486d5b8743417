"""Blocking MLflow queries behind the REST API; called from a worker thread, never the loop."""

from __future__ import annotations

from typing import Any

from server_ext.server.api import BadRequest, Page, run_summary


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


def list_runs(tracking_uri: str, experiment_id: str, page: Page) -> dict[str, Any]:
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
    return {"runs": [run_summary(r) for r in runs], "next_page_token": runs.token or None}
