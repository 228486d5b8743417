"""The ``MLTeams`` configuration section: teams, profiles and datasets, as traitlets.

In the Zero to JupyterHub chart it is written under ``hub.config.MLTeams``; in a plain
``jupyterhub_config.py`` as ``c.MLTeams.teams = {...}``. The content is validated as a whole by
``hub_ext.policy.load_config``, which names every bad key.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Dict, Float, Unicode
from traitlets.config import LoggingConfigurable

from .policy import MLTeamsConfig, load_config


class MLTeams(LoggingConfigurable):
    """Teams, their quotas and profiles, and the team datasets (one declarative source)."""

    teams = Dict(
        config=True,
        help="""Teams by name. Each has `groups` (identity-provider groups whose members belong to
        the team), `lead_groups`, `namespace` (default `team-<name>`), `quota` (`gpus`,
        `gpus_per_user`, optional `cpu` and `memory`), `profiles` (the first is the default),
        `datasets`, `promotion` and `contact`. See docs/admin/teams-and-quotas.md.""",
    )
    profiles = Dict(
        config=True,
        help="""Server profiles by name: `display_name`, `description`, `image`, `gpus` (a count or
        `{min, max, default}`), `cpu`, `memory`, `node_selector`, `tolerations`, `env` and
        `queue` (`{enabled, max_wait_seconds}`: wait in the team's line instead of failing when
        the team's GPUs are all in use).""",
    )
    datasets = Dict(
        config=True,
        help="""Team datasets by name: `uri`, `format`, `description`, `volume`,
        `credentials_secret`. A team lists the ones it may use.""",
    )
    provision = Bool(
        True,
        config=True,
        help="""Create or update each team's Namespace, ResourceQuota and the hub's RoleBinding
        there when the hub starts. Turn off to manage them yourself (GitOps), rendering them with
        `python -m hub_ext.manifests`; the hub then checks they exist and says what is missing.""",
    )
    hub_namespace = Unicode(
        "",
        config=True,
        help="""Namespace the hub runs in (its service account's namespace). Default: the
        `POD_NAMESPACE` environment variable, as set by the z2jh chart, else `jupyterhub`.""",
    )
    hub_service_account = Unicode(
        "hub",
        config=True,
        help="Service account the hub runs as (z2jh: `hub`), bound to the per-team RBAC.",
    )
    queue_poll_seconds = Float(
        2.0,
        config=True,
        help="""How often queued spawns are re-checked, in seconds (they are also re-checked at
        once when a server stops or a spawn fails).""",
    )

    def raw(self) -> dict[str, Any]:
        return {"teams": self.teams, "profiles": self.profiles, "datasets": self.datasets}

    def load(self) -> MLTeamsConfig:
        """The validated configuration; raises ``ConfigError`` naming each bad key."""
        return load_config(self.raw())
