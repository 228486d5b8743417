"""What the hub does with the MLTeams section when it starts.

Call ``at_hub_start(c)`` from the hub's configuration (in the z2jh chart, one line of
``hub.extraConfig``; see docs/admin/provisioning.md). It validates the whole section at once, so a
bad key stops the hub with a message naming it, and, once the hub runs, reconciles each team's
Namespace, ResourceQuota and the hub's RoleBinding there (``MLTeams.provision``), or checks that
they exist and logs what is missing. Spawns wait for that first pass.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from kubernetes_asyncio import client, config
from traitlets.config import Config

from hub_ext.policy import ConfigError, MLTeamsConfig
from hub_ext.policy.manifests import render_team_manifests
from hub_ext.provisioning.apply import ProvisioningError, check_ready, reconcile
from hub_ext.settings import MLTeams

log = logging.getLogger("JupyterHub")
_pending: list[asyncio.Task[None]] = []


def hub_namespace(settings: MLTeams) -> str:
    return settings.hub_namespace or os.environ.get("POD_NAMESPACE") or "jupyterhub"


def at_hub_start(c: Config) -> MLTeamsConfig:
    """Validate ``c.MLTeams`` now and prepare the team namespaces once the hub's loop runs."""
    settings = MLTeams(config=c)
    try:
        team_config = settings.load()
    except ConfigError as exc:
        sys.exit(f"jupyterhub-mlteams: the MLTeams configuration is invalid:\n{exc}")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return team_config
    _pending.append(loop.create_task(prepare_cluster(settings, team_config)))
    return team_config


async def cluster_prepared() -> None:
    """Wait for the start-up pass (if one was scheduled); it never raises."""
    while _pending:
        await asyncio.shield(_pending[0])
        _pending.pop(0)


async def _api_client() -> client.ApiClient:
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
    except config.ConfigException:
        await config.load_kube_config(client_configuration=cfg)
    return client.ApiClient(configuration=cfg)


async def _quotas_in_effect(settings: MLTeams, team_config: MLTeamsConfig) -> dict[str, Any]:
    """The teams' quotas with the run-time overrides of the admin pages (none when the service's
    database is not set or cannot be read: the configured quotas, and a warning)."""
    if not settings.overrides_db_url:
        return {}
    from hub_ext.service.store import Store
    from hub_ext.service.store.overrides import read_active, team_quotas

    store = Store(settings.overrides_db_url)
    try:
        return team_quotas(team_config, await read_active(store))
    except Exception as exc:
        log.warning("jupyterhub-mlteams: quota overrides not read, configured quotas used: %s", exc)
        return {}
    finally:
        store.close()


async def prepare_cluster(settings: MLTeams, team_config: MLTeamsConfig) -> None:
    """Reconcile (or check) every team's namespace, quota and binding; log the outcome."""
    try:
        api = await _api_client()
    except Exception as exc:
        log.error("jupyterhub-mlteams: cannot reach the Kubernetes API to prepare teams: %s", exc)
        return
    async with api:
        if settings.provision:
            manifests = render_team_manifests(
                team_config,
                hub_namespace=hub_namespace(settings),
                hub_service_account=settings.hub_service_account,
                cluster_scoped=False,
                quotas=await _quotas_in_effect(settings, team_config),
            )
            try:
                report = await reconcile(api, manifests, log=log)
            except ProvisioningError as exc:
                log.error("jupyterhub-mlteams: could not prepare the team namespaces: %s", exc)
                return
            except Exception:
                log.exception("jupyterhub-mlteams: preparing the team namespaces failed")
                return
            log.info("jupyterhub-mlteams: team namespaces ready (%s)", report.summary())
            return
        try:
            problems = await check_ready(api, team_config)
        except Exception as exc:
            log.error("jupyterhub-mlteams: could not check the team namespaces: %s", exc)
            return
        for problem in problems:
            log.warning("jupyterhub-mlteams: %s (MLTeams.provision is off)", problem)
        if not problems:
            log.info("jupyterhub-mlteams: every team's namespace, quota and binding is in place")
