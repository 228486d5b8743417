"""The hub's configuration sections, as traitlets.

* ``MLTeams``: teams, profiles and datasets (one declarative source), provisioning and the queue.
  The content is validated as a whole by ``hub_ext.policy.load_config``, which names every bad key.
* ``MLTeamsTracking``: what every notebook server gets for MLflow tracking and the team datasets.

In the Zero to JupyterHub chart they are written under ``hub.config.MLTeams`` and
``hub.config.MLTeamsTracking``; in a plain ``jupyterhub_config.py`` as ``c.MLTeams.teams = {...}``.
"""

from __future__ import annotations

import json
from typing import Any

from traitlets import Bool, Dict, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from hub_ext.policy import MLTeamsSection, load_config
from hub_ext.policy.notebook_pod import TrackingSettings

SECTION_GUIDE = (
    "See docs/admin/teams-and-quotas.md; the JSON Schema is helm-values/mlteams.schema.json."
)


def _help(key: str) -> str:
    """The help of a section key: its description in the ``MLTeams`` schema, declared once there."""
    description = MLTeamsSection.model_fields[key].description or ""
    return f"{description} {SECTION_GUIDE}"


def _default(key: str) -> Any:
    return MLTeamsSection.model_fields[key].default


class MLTeams(LoggingConfigurable):
    """Teams, their quotas and profiles, and the team datasets (one declarative source).

    Each key is declared in the ``MLTeams`` schema (``hub_ext.policy.config.MLTeamsSection``),
    which validates the whole section; these traitlets make the keys known to the hub's
    configuration and take their help and defaults from it.
    """

    teams = Dict(config=True, help=_help("teams"))
    profiles = Dict(config=True, help=_help("profiles"))
    datasets = Dict(config=True, help=_help("datasets"))
    provision = Bool(_default("provision"), config=True, help=_help("provision"))
    hub_namespace = Unicode(_default("hub_namespace"), config=True, help=_help("hub_namespace"))
    hub_service_account = Unicode(
        _default("hub_service_account"), config=True, help=_help("hub_service_account")
    )
    queue_poll_seconds = Float(
        _default("queue_poll_seconds"), config=True, help=_help("queue_poll_seconds")
    )
    sharing = Dict(config=True, help=_help("sharing"))
    overrides_db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the `mlteams` service's database, where the admin pages keep
        run-time quota overrides; the hub reads them for admission and the spawn form. Set by
        `configure_service(c)` to the service's own database; empty: no overrides.""",
    )

    def raw(self) -> dict[str, Any]:
        """The section as configured, every key included."""
        return {key: getattr(self, key) for key in MLTeamsSection.model_fields}

    def load(self) -> MLTeamsSection:
        """The validated configuration; raises ``ConfigError`` naming each bad key.

        The hub reads the section at start, in its spawners and in its authenticator: the same
        content is parsed once, and the later readers get the configuration already built.
        """
        raw = self.raw()
        try:
            key = json.dumps(raw, sort_keys=True, default=repr)
        except (TypeError, ValueError):
            return load_config(raw)
        cached = _parsed.get(key)
        if cached is None:
            cached = load_config(raw)
            _parsed.clear()
            _parsed[key] = cached
        return cached


_parsed: dict[str, MLTeamsSection] = {}
"""The last configuration parsed, by its content."""


class MLTeamsTracking(LoggingConfigurable):
    """MLflow tracking server and dataset access for the notebook servers."""

    enabled = Bool(
        True,
        config=True,
        help="""Pre-configure MLflow tracking and team datasets in each server. Off: the servers
        get neither the tracking variables nor the dataset mounts.""",
    )
    tracking_uri = Unicode(
        "",
        config=True,
        help="""URI of the MLflow tracking server as seen from the user pods, e.g.
        `http://mlflow.mlflow.svc:5000`. Set as `MLFLOW_TRACKING_URI` in every server; users
        never type it and requests cannot change it. Empty: no tracking.""",
    )
    public_url = Unicode(
        "",
        config=True,
        help="""Address of the MLflow tracking server as users' browsers reach it, e.g.
        `https://mlflow.example.com`. Set as `MLTEAMS_TRACKING_PUBLIC_URL` in every server: the
        base of the run links the `/mlteams/` API hands out. Empty: `tracking_uri`.""",
    )
    credentials_secret = Unicode(
        "",
        config=True,
        help="""Name of a Secret in each team namespace holding the MLflow credentials (keys
        `token`, or `username` and `password`, see `credentials_keys`). Passed to the server
        only as secret references (`MLFLOW_TRACKING_TOKEN` etc.), never as values.""",
    )
    credentials_kind = Unicode(
        "token",
        config=True,
        help="""`token` (bearer token from key `token`) or `basic` (keys `username` and
        `password`) for `credentials_secret`.""",
    )
    http_request_timeout = Float(
        10.0,
        config=True,
        help="""Seconds an MLflow HTTP request from a kernel may take
        (`MLFLOW_HTTP_REQUEST_TIMEOUT`): an unreachable server never hangs a notebook.""",
    )
    http_request_max_retries = Integer(
        1,
        config=True,
        help="Retries of a failed MLflow HTTP request (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`).",
    )
    datasets_mount_root = Unicode(
        "/home/jovyan/datasets",
        config=True,
        help="""Folder under which each team dataset with a volume is mounted read-only, as
        `<root>/<dataset name>` (`~/datasets/<name>` for the z2jh default home).""",
    )
    notebook_root = Unicode(
        "/home/jovyan",
        config=True,
        help="""The single-user server's root folder; notebook paths in experiment names are
        relative to it.""",
    )
    object_store_endpoint = Unicode(
        "",
        config=True,
        help="""Endpoint URL of the S3-compatible store holding `s3://` datasets (e.g. a MinIO
        service), put into the code snippets. Empty: the provider's default endpoint.""",
    )
    dataset_key_id_key = Unicode(
        "AWS_ACCESS_KEY_ID",
        config=True,
        help="Key of the access key id in each dataset's `credentials_secret`.",
    )
    dataset_secret_key_key = Unicode(
        "AWS_SECRET_ACCESS_KEY",
        config=True,
        help="Key of the secret access key in each dataset's `credentials_secret`.",
    )

    service_url = Unicode(
        "",
        config=True,
        help="""Address of the hub's `mlteams` service as the servers reach it, with its prefix
        (e.g. `http://hub:10101/services/mlteams/`). Set as `MLTEAMS_SERVICE_URL` in every
        server: `/mlteams/promote` forwards there. `configure_service(c)` sets it from the
        service's URL when left empty.""",
    )

    def settings(self) -> TrackingSettings:
        return TrackingSettings(
            enabled=self.enabled,
            tracking_uri=self.tracking_uri,
            public_url=self.public_url,
            credentials_secret=self.credentials_secret or None,
            credentials_kind=self.credentials_kind,
            http_request_timeout=self.http_request_timeout,
            http_request_max_retries=self.http_request_max_retries,
            datasets_mount_root=self.datasets_mount_root,
            notebook_root=self.notebook_root,
            object_store_endpoint=self.object_store_endpoint or None,
            dataset_key_id_key=self.dataset_key_id_key,
            dataset_secret_key_key=self.dataset_secret_key_key,
            service_url=self.service_url,
        )
