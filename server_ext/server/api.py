"""The REST API's pure parts: request parameters, pagination and response shapes (no tornado,
no MLflow import)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from server_ext import contract as env
from server_ext.contract import experiment_name, relative_notebook_path

MAX_PAGE_TOKEN = 2048
MAX_PATH = 4096


class BadRequest(ValueError):
    """A request parameter is invalid; the message says which and why."""


class NotFound(LookupError):
    """What the request names does not exist; the message says what."""


class Forbidden(PermissionError):
    """MLflow refuses the user's credentials this read; the message says what."""


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


def run_link(public_url: str, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of the run under ``public_url``; ``None`` without an http(s) base."""
    base = public_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        return None
    exp, run = quote(experiment_id, safe=""), quote(run_id, safe="")
    return f"{base}/#/experiments/{exp}/runs/{run}"


def run_summary(run: Any, link: str | None = None) -> dict[str, Any]:
    """The API view of an MLflow run (any object with MLflow's ``info`` and ``data``) and the
    link to its page in the MLflow UI."""
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "link": link,
        "run_name": getattr(info, "run_name", None),
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "metrics": dict(data.metrics),
        "params": dict(data.params),
        "tags": {k: v for k, v in data.tags.items() if k.startswith("mlteams.")},
    }


def team_summary(environ: Mapping[str, str]) -> dict[str, Any]:
    """The user's team, profile and quota as the hub gave them to this server."""
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
    }
