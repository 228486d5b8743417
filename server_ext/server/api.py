"""The REST API's pure parts: request parameters, pagination and response shapes (no tornado,
no MLflow import)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from server_ext import contract as env
from server_ext.contract import experiment_name, relative_notebook_path
from server_ext.server.reproduce import DATASET_CONTEXT, DatasetInput

MAX_PAGE_TOKEN = 2048
MAX_PATH = 4096
MLFLOW_USER_TAG = "mlflow.user"


class BadRequest(ValueError):
    """A request parameter is invalid; the message says which and why."""


class NotFound(LookupError):
    """What the request names does not exist; the message says what."""


class Forbidden(PermissionError):
    """MLflow refuses the user's credentials this read; the message says what."""


class Conflict(RuntimeError):
    """The request does not fit what it names as it is now (a run that has already ended)."""


@dataclass(frozen=True)
class Page:
    size: int
    token: str | None


def parse_page(size: str | None, token: str | None, *, default: int, maximum: int) -> Page:
    if size is None or size == "":
        value = default
    else:
        try:
            value = int(size)
        except ValueError:
            raise BadRequest(f"page_size must be an integer, got {size[:40]!r}") from None
        if not 1 <= value <= maximum:
            raise BadRequest(f"page_size must be between 1 and {maximum}, got {value}")
    if token is not None and (len(token) > MAX_PAGE_TOKEN or not token.isprintable()):
        raise BadRequest("page_token is not a token returned by this API")
    return Page(value, token or None)


def parse_notebook_path(path: str | None) -> str:
    """A notebook path relative to the server root, as the Jupyter contents API names it."""
    if not path:
        raise BadRequest("path (the notebook's path relative to the server root) is required")
    if len(path) > MAX_PATH or "\x00" in path:
        raise BadRequest("path is too long or not text")
    rel = relative_notebook_path(path)
    if rel.split("/")[0] == ".." or not rel:
        raise BadRequest("path must name a notebook inside the server root")
    return rel


def notebook_experiment(team: str, user: str, path: str) -> str:
    return experiment_name(team, user, path)


def ui_base(public_url: str) -> str | None:
    """The MLflow UI's address without a trailing ``/``; ``None`` unless it is http(s)."""
    base = public_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        return None
    return base


def _ui_link(public_url: str, *parts: str) -> str | None:
    base = ui_base(public_url)
    if base is None:
        return None
    return base + "/#/" + "/".join(quote(p, safe="") for p in parts)


def experiment_link(public_url: str, experiment_id: str) -> str | None:
    """The MLflow UI page of the experiment; ``None`` without an http(s) base."""
    return _ui_link(public_url, "experiments", experiment_id)


def run_link(public_url: str, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of the run under ``public_url``; ``None`` without an http(s) base."""
    return _ui_link(public_url, "experiments", experiment_id, "runs", run_id)


def logged_model_link(public_url: str, experiment_id: str, model_id: str) -> str | None:
    """The MLflow UI page of a logged model (MLflow 3); ``None`` without an http(s) base."""
    return _ui_link(public_url, "experiments", experiment_id, "models", model_id)


def model_version_link(public_url: str, name: str, version: str | int) -> str | None:
    """The MLflow UI page of a registered model's version; ``None`` without an http(s) base."""
    return _ui_link(public_url, "models", name, "versions", str(version))


def model_version_link_template(public_url: str) -> str | None:
    """``model_version_link`` with ``{name}`` and ``{version}`` left for the client to fill in
    (URL-encoded); ``None`` without an http(s) base."""
    base = ui_base(public_url)
    return None if base is None else base + "/#/models/{name}/versions/{version}"


def duration_ms(status: str, start_time: int | None, end_time: int | None) -> int | None:
    """How long the run took; ``None`` while it runs or when a time is missing."""
    if status == "RUNNING" or start_time is None or end_time is None:
        return None
    return max(0, end_time - start_time)


def dataset_inputs_of(run: Any) -> list[DatasetInput]:
    """The dataset inputs of an MLflow run (any object with MLflow's ``inputs``)."""
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    return [
        DatasetInput(
            name=i.dataset.name,
            digest=i.dataset.digest,
            source_type=i.dataset.source_type,
            source=i.dataset.source,
            tags={t.key: t.value for t in i.tags},
        )
        for i in inputs
    ]


def dataset_brief(dataset: DatasetInput) -> dict[str, Any]:
    """A dataset input as the list of runs shows it: what, which version, and what for."""
    return {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "context": dataset.tags.get(DATASET_CONTEXT),
    }


def model_outputs_of(run: Any) -> list[str]:
    """The ids of the models the run logged (MLflow 3's run outputs), each once, in order."""
    outputs = getattr(run, "outputs", None)
    ids = [o.model_id for o in outputs.model_outputs] if outputs is not None else []
    return list(dict.fromkeys(ids))


def run_summary(run: Any, public_url: str = "") -> dict[str, Any]:
    """The API view of an MLflow run (any object with MLflow's ``info``, ``data``, ``inputs``
    and ``outputs``) with links to its page and its models' pages in the MLflow UI under
    ``public_url``."""
    info, data = run.info, run.data
    exp = info.experiment_id
    return {
        "run_id": info.run_id,
        "link": run_link(public_url, exp, info.run_id),
        "run_name": getattr(info, "run_name", None),
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "duration_ms": duration_ms(info.status, info.start_time, info.end_time),
        "metrics": dict(data.metrics),
        "params": dict(data.params),
        "tags": {k: v for k, v in data.tags.items() if k.startswith("mlteams.")},
        "datasets": [dataset_brief(d) for d in dataset_inputs_of(run)],
        "models": [
            {"model_id": m, "link": logged_model_link(public_url, exp, m)}
            for m in model_outputs_of(run)
        ],
    }


def logged_model_view(model: Any, public_url: str = "") -> dict[str, Any]:
    """The API view of an MLflow 3 logged model (any object with ``LoggedModel``'s fields)."""
    return {
        "model_id": model.model_id,
        "name": model.name,
        "link": logged_model_link(public_url, model.experiment_id, model.model_id),
        "model_uri": f"models:/{model.model_id}",
        "experiment_id": model.experiment_id,
        "source_run_id": model.source_run_id,
        "status": str(model.status),
        "model_type": model.model_type,
        "artifact_location": model.artifact_location,
        "creation_timestamp": model.creation_timestamp,
        "params": dict(model.params or {}),
        "metrics": [
            {
                "key": m.key,
                "value": m.value,
                "step": m.step,
                "dataset_name": m.dataset_name,
                "dataset_digest": m.dataset_digest,
            }
            for m in model.metrics or []
        ],
    }


def user_experiments_prefix(team: str, user: str) -> str:
    """The start of the names of ``user``'s notebook experiments in ``team``."""
    return experiment_name(team, user, "").rsplit("/", 1)[0] + "/"


def owns_run(
    team: str,
    user: str,
    *,
    run_user_id: str | None,
    tags: Mapping[str, str],
    experiment: str | None = None,
) -> bool:
    """Whether the run is ``user``'s: MLflow's user of the run (``info.user_id`` or the
    ``mlflow.user`` tag) is ``user``, or the run is in one of ``user``'s notebook experiments of
    ``team`` (``experiment``: the experiment's name, when known)."""
    if user and user in (run_user_id, tags.get(MLFLOW_USER_TAG)):
        return True
    return experiment is not None and experiment.startswith(user_experiments_prefix(team, user))


class ExperimentIds:
    """Experiment ids by (tracking URI, name), each kept for ``seconds``: the notebook's
    experiment is looked up once, not before every page of runs. Only active experiments are
    kept; ``drop`` forgets one that was not found, deleted or answered nothing."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._ids: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, tracking_uri: str, name: str) -> str | None:
        found = self._ids.get((tracking_uri, name))
        if found is None:
            return None
        if self.clock() >= found[1]:
            del self._ids[(tracking_uri, name)]
            return None
        return found[0]

    def put(self, tracking_uri: str, name: str, experiment: Mapping[str, Any] | None) -> None:
        """Keep the experiment's id (as ``find_experiment`` answers) if it is active; forget the
        name otherwise."""
        if experiment is None or experiment.get("lifecycle_stage") != "active":
            self.drop(tracking_uri, name)
            return
        if self.seconds > 0:
            expires = self.clock() + self.seconds
            self._ids[(tracking_uri, name)] = (str(experiment["experiment_id"]), expires)
            self._expire()

    def drop(self, tracking_uri: str, name: str) -> None:
        self._ids.pop((tracking_uri, name), None)

    def __len__(self) -> int:
        return len(self._ids)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, (_, expires) in self._ids.items() if now >= expires]:
            del self._ids[key]


def promotion_status(service_url: str, token: str, not_configured: str) -> dict[str, Any]:
    """Whether ``POST /mlteams/promote`` can reach the promotion service, and why not."""
    available = bool(service_url and token)
    return {"available": available, "reason": None if available else not_configured}


def team_summary(
    environ: Mapping[str, str],
    *,
    public_url: str = "",
    promotion: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The user's team, profile and quota as the hub gave them to this server, the MLflow UI's
    address (``public_url`` when http(s)) and whether promotion is set up."""
    try:
        quota = json.loads(environ.get(env.QUOTA) or "{}")
    except json.JSONDecodeError:
        quota = {}
    return {
        "user": environ.get(env.USER),
        "team": environ.get(env.TEAM),
        "team_display_name": quota.get("display_name"),
        "contact": quota.get("contact"),
        "profile": environ.get(env.PROFILE),
        "image": environ.get(env.IMAGE),
        "gpus": int(environ.get(env.GPUS) or 0),
        "gpu_type": environ.get(env.GPU_TYPE),
        "quota": {"gpus": quota.get("gpus"), "gpus_per_user": quota.get("gpus_per_user")},
        "tracking": bool(environ.get(env.TRACKING_URI)),
        "tracking_public_url": ui_base(public_url),
        "model_version_link_template": model_version_link_template(public_url),
        "promotion": dict(promotion) if promotion is not None else None,
    }
