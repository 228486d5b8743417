"""The extension application that registers the /mlteams endpoints."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Integer, Unicode, default

from server_ext import contract as env
from server_ext.environments.user_site import prepare_user_site
from server_ext.server.api import ExperimentIds
from server_ext.server.handlers import default_handlers


class MLTeamsExtension(ExtensionApp):
    """Jupyter server extension for ML teams."""

    name = "server_ext"

    tracking_uri = Unicode(
        config=True,
        help="""MLflow tracking server for the REST API. Default: `MLFLOW_TRACKING_URI`, as set by
        the hub in the pod. Never taken from a request.""",
    )
    team = Unicode(config=True, help="The user's team. Default: `MLTEAMS_TEAM`, as set by the hub.")
    user = Unicode(
        config=True, help="The server's user. Default: `JUPYTERHUB_USER`, as set by the hub."
    )
    tracking_public_url = Unicode(
        config=True,
        help="""The MLflow tracking server's address as a browser reaches it: the base of the run
        links the API gives out (`link` in `/mlteams/runs` and `/mlteams/runs/<id>/reproduce`).
        Default: `MLTEAMS_TRACKING_PUBLIC_URL`, as set by the hub; else the tracking URI when it
        is an http(s) address. Never taken from a request.""",
    )
    default_page_size = Integer(
        25, config=True, help="Runs per page when the request gives no `page_size`."
    )
    max_page_size = Integer(100, config=True, help="Largest `page_size` a request may ask for.")
    experiment_cache_seconds = Float(
        30.0,
        config=True,
        help="""How long `/mlteams/runs` keeps a notebook experiment's id before looking it up
        again (0: every request). An empty page, or an error, looks it up again at once.""",
    )
    service_url = Unicode(
        config=True,
        help="""The hub's `mlteams` service, where `/mlteams/promote` and the promotion endpoints
        forward to. Default: `MLTEAMS_SERVICE_URL`, as set by the hub. Never taken from a
        request.""",
    )
    hub_api_token = Unicode(
        config=True,
        help="""The token the promotion endpoints call the service with. Default: the server's own
        hub token, `JUPYTERHUB_API_TOKEN`, which names this server's user.""",
    )
    service_timeout = Float(
        300.0,
        config=True,
        help="""Seconds a call to the `mlteams` service may take before the caller gets a 503; at
        least `promote_wait_seconds`.""",
    )
    promote_wait_seconds = Integer(
        240,
        config=True,
        help="""How long `POST /mlteams/promote` waits for the promotion to settle (promoted,
        refused, waiting for approval, failed) before answering 202 with the promotion still
        evaluating; a request's `?wait=` overrides it.""",
    )

    @default("service_url")
    def _service_url(self) -> str:
        return os.environ.get(env.SERVICE_URL, "")

    @default("hub_api_token")
    def _hub_api_token(self) -> str:
        return os.environ.get(env.HUB_API_TOKEN, "")

    @default("tracking_uri")
    def _tracking_uri(self) -> str:
        return os.environ.get(env.TRACKING_URI, "")

    @default("tracking_public_url")
    def _tracking_public_url(self) -> str:
        return os.environ.get(env.TRACKING_PUBLIC_URL) or self.tracking_uri

    @default("team")
    def _team(self) -> str:
        return os.environ.get(env.TEAM, "")

    @default("user")
    def _user(self) -> str:
        return os.environ.get(env.USER, "")

    def initialize_settings(self) -> None:
        os.environ.setdefault(env.HTTP_TIMEOUT, env.DEFAULT_HTTP_TIMEOUT)
        os.environ.setdefault(env.HTTP_MAX_RETRIES, env.DEFAULT_HTTP_MAX_RETRIES)
        self.experiment_ids = ExperimentIds(self.experiment_cache_seconds)
        self.settings["mlteams"] = self
        prepare_user_site()

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
