"""The extension application that registers the /mlteams endpoints."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Integer, Unicode, default

from server_ext import contract as env
from server_ext.environments.user_site import prepare_user_site
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
        self.settings["mlteams"] = self
        prepare_user_site()

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
