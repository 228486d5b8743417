"""HTTP handlers under /mlteams/: thin layers over ``api``, ``datasets`` and
``tracking_queries``. Every handler requires authentication; jupyter_server's ``APIHandler``
checks XSRF on every non-GET request that is not token-authenticated."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from server_ext import __version__
from server_ext.contract import CatalogError, catalog_from_env
from server_ext.server.api import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Page,
    experiment_link,
    notebook_experiment,
    parse_notebook_path,
    parse_page,
    promotion_status,
    run_link,
    team_summary,
)
from server_ext.server.datasets import describe, find, mount_status, snippet

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")


def is_mounted(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.R_OK)


class MLTeamsHandler(APIHandler):
    """Common parts: the extension's settings, JSON errors, blocking calls off the loop."""

    @property
    def mlteams(self) -> Any:
        return self.settings["mlteams"]

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def fail(self, status: int, message: str) -> None:
        raise web.HTTPError(status, message, reason=message.split(":")[0][:60])

    def identity(self) -> tuple[str, str]:
        team, user = self.mlteams.team, self.mlteams.user
        if not team or not user:
            self.fail(409, "this server has no team: start it from the hub with a team profile")
        return team, user

    def tracking_uri(self) -> str:
        uri = self.mlteams.tracking_uri
        if not uri:
            self.fail(409, "MLflow tracking is not configured for this server")
        return uri

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except BadRequest as exc:
            self.fail(400, str(exc))
        except NotFound as exc:
            self.fail(404, str(exc))
        except Forbidden as exc:
            self.fail(403, str(exc))
        except Conflict as exc:
            self.fail(409, str(exc))
        except Exception as exc:
            self.log.warning("mlteams: MLflow request failed: %s", type(exc).__name__)
            self.fail(503, "the MLflow tracking server did not answer; try again later")

    def checked_run_id(self, run_id: str) -> str:
        """``run_id`` when it is an MLflow run id; a 400 otherwise."""
        from server_ext.server.reproduce import valid_run_id

        if not valid_run_id(run_id):
            self.fail(400, "run_id must be an MLflow run id (letters, digits, '-' and '_')")
        return run_id

    def notebook(self) -> str:
        try:
            return parse_notebook_path(self.get_query_argument("path", None))
        except BadRequest as exc:
            self.fail(400, str(exc))
            raise


class StatusHandler(MLTeamsHandler):
    """Report that the extension is loaded, and its version."""

    @web.authenticated
    def get(self) -> None:
        self.write_json({"extension": "jupyterhub-mlteams", "version": __version__})


class ExperimentHandler(MLTeamsHandler):
    """The current notebook's experiment (GET), created on demand (POST)."""

    @web.authenticated
    async def get(self) -> None:
        team, user = self.identity()
        name = notebook_experiment(team, user, self.notebook())
        from server_ext.server.tracking_queries import find_experiment

        found = await self.blocking(find_experiment, self.tracking_uri(), name)
        self.write_json({"name": name, "experiment": found})

    @web.authenticated
    async def post(self) -> None:
        team, user = self.identity()
        path = self.notebook()
        name = notebook_experiment(team, user, path)
        from server_ext.server.tracking_queries import ensure_experiment

        tags = {"mlteams.team": team, "mlteams.user": user, "mlteams.notebook_path": path}
        found = await self.blocking(ensure_experiment, self.tracking_uri(), name, tags)
        self.write_json({"name": name, "experiment": found}, status=201)


class RunsHandler(MLTeamsHandler):
    """The current notebook's runs, newest first, paginated, with their durations, dataset
    inputs and logged models. The experiment's id is kept for a short while
    (``MLTeamsExtension.experiment_cache_seconds``): a page is one MLflow query then."""

    @web.authenticated
    async def get(self) -> None:
        team, user = self.identity()
        path = self.notebook()
        try:
            page = parse_page(
                self.get_query_argument("page_size", None),
                self.get_query_argument("page_token", None),
                default=self.mlteams.default_page_size,
                maximum=self.mlteams.max_page_size,
            )
        except BadRequest as exc:
            self.fail(400, str(exc))
            raise
        uri = self.tracking_uri()
        name = notebook_experiment(team, user, path)
        ids = self.mlteams.experiment_ids
        was_kept = ids.get(uri, name) is not None
        experiment_id = await self.experiment_id(uri, name)
        result = await self.runs_page(uri, name, experiment_id, page)
        if was_kept and not result["runs"]:
            # nothing in the kept experiment: it may have been deleted and made again
            ids.drop(uri, name)
            found = await self.experiment_id(uri, name)
            if found != experiment_id:
                experiment_id = found
                result = await self.runs_page(uri, name, found, page)
        link = experiment_link(self.mlteams.tracking_public_url, experiment_id or "")
        self.write_json(
            {
                "experiment": name,
                "experiment_id": experiment_id,
                "experiment_link": link if experiment_id else None,
                **result,
            }
        )

    async def experiment_id(self, uri: str, name: str) -> str | None:
        """The id of the experiment ``name``, as kept or looked up (and then kept)."""
        from server_ext.server.tracking_queries import find_experiment

        ids = self.mlteams.experiment_ids
        kept: str | None = ids.get(uri, name)
        if kept is not None:
            return kept
        experiment = await self.blocking(find_experiment, uri, name)
        ids.put(uri, name, experiment)
        return experiment["experiment_id"] if experiment else None

    async def runs_page(
        self, uri: str, name: str, experiment_id: str | None, page: Page
    ) -> dict[str, Any]:
        """One page of the experiment's runs; none without an experiment."""
        from server_ext.server.tracking_queries import list_runs

        if experiment_id is None:
            return {"runs": [], "next_page_token": None}
        public = self.mlteams.tracking_public_url
        try:
            found: dict[str, Any] = await self.blocking(list_runs, uri, experiment_id, page, public)
        except web.HTTPError:
            self.mlteams.experiment_ids.drop(uri, name)
            raise
        return found


class ReproduceHandler(MLTeamsHandler):
    """What it takes to recreate a run: image, packages, commit, params, datasets, link.

    Any run the user's MLflow credentials can read (MLflow's permissions decide, as in its UI):
    a teammate's run in a team experiment is the common case."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        from server_ext.server.reproduce import reproduce_view
        from server_ext.server.tracking_queries import run_record

        checked = self.checked_run_id(run_id)
        record = await self.blocking(run_record, self.tracking_uri(), checked)
        link = run_link(self.mlteams.tracking_public_url, record.experiment_id, record.run_id)
        self.write_json(reproduce_view(record, link))


class RunModelsHandler(MLTeamsHandler):
    """The models a run logged (MLflow 3's logged models), with their metrics: what the panel's
    promote form offers. Any run the user's MLflow credentials can read."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        from server_ext.server.tracking_queries import run_models

        checked = self.checked_run_id(run_id)
        public = self.mlteams.tracking_public_url
        found = await self.blocking(run_models, self.tracking_uri(), checked, public)
        self.write_json(found)


class EndRunHandler(MLTeamsHandler):
    """End a running run of this server's user (status FINISHED): a run left running by a
    kernel that stopped. Another user's run is refused (403), an ended run is a 409."""

    @web.authenticated
    async def post(self, run_id: str) -> None:
        from server_ext.server.tracking_queries import end_run

        checked = self.checked_run_id(run_id)
        team, user = self.identity()
        uri = self.tracking_uri()
        public = self.mlteams.tracking_public_url
        ended = await self.blocking(end_run, uri, checked, team, user, public)
        self.write_json({"run": ended})


class DatasetsHandler(MLTeamsHandler):
    """The team's datasets with their mount status."""

    def catalog(self) -> list[Any]:
        try:
            return catalog_from_env(os.environ)
        except CatalogError as exc:
            self.fail(500, f"the dataset catalog from the hub is unreadable: {exc}")
            raise

    @web.authenticated
    def get(self) -> None:
        entries = self.catalog()
        self.write_json({"datasets": [describe(e, mount_status(e, is_mounted)) for e in entries]})


class DatasetHandler(DatasetsHandler):
    """One dataset of the team with a ready code snippet."""

    @web.authenticated
    def get(self, name: str) -> None:
        entry = find(self.catalog(), name)
        if entry is None:
            self.fail(404, f"no dataset {name!r} in your team's catalog")
            return
        view = describe(entry, mount_status(entry, is_mounted))
        self.write_json({**view, "snippet": snippet(entry)})


class TeamHandler(MLTeamsHandler):
    """The user's team, profile and quota as given by the hub, the MLflow UI's address and
    whether promotion is set up."""

    @web.authenticated
    def get(self) -> None:
        from server_ext.server.promote_handlers import NOT_CONFIGURED

        ext = self.mlteams
        promotion = promotion_status(ext.service_url, ext.hub_api_token, NOT_CONFIGURED)
        summary = team_summary(os.environ, public_url=ext.tracking_public_url, promotion=promotion)
        self.write_json(summary)


class OpenAPIHandler(MLTeamsHandler):
    """The OpenAPI description of these endpoints."""

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml")
        self.finish(OPENAPI_FILE.read_text())


def default_handlers() -> list[tuple[str, type]]:
    from server_ext.server.environment_handlers import environment_handlers
    from server_ext.server.promote_handlers import promote_handlers
    from server_ext.server.quota_request_handlers import quota_request_handlers
    from server_ext.server.team_live_handlers import team_live_handlers

    return [
        *environment_handlers(),
        *promote_handlers(),
        *team_live_handlers(),
        *quota_request_handlers(),
        (r"/mlteams/status", StatusHandler),
        (r"/mlteams/experiment", ExperimentHandler),
        (r"/mlteams/runs", RunsHandler),
        (r"/mlteams/runs/(?P<run_id>[^/]+)/reproduce", ReproduceHandler),
        (r"/mlteams/runs/(?P<run_id>[^/]+)/models", RunModelsHandler),
        (r"/mlteams/runs/(?P<run_id>[^/]+)/end", EndRunHandler),
        (r"/mlteams/datasets", DatasetsHandler),
        (r"/mlteams/datasets/([^/]+)", DatasetHandler),
        (r"/mlteams/team", TeamHandler),
        (r"/mlteams/openapi.yaml", OpenAPIHandler),
    ]
