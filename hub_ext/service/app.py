"""The ``mlteams`` service: a tornado application the hub starts as a managed service.

The hub gives a managed service its URL, prefix, API URL and token in the standard
``JUPYTERHUB_*`` environment variables; ``hub_config.configure_service`` adds the ``MLTeams``
section the hub validated, as JSON in ``MLTEAMS_SERVICE_CONFIG``. The service validates it again
when it starts and stops with a message naming each bad key.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import os
import signal
import sys
from typing import Any, NoReturn
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.log import access_log
from traitlets import Float, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Application

from hub_ext.policy import ConfigError, load_config
from hub_ext.policy.config import MLTeamsSection
from hub_ext.service.admin.cluster import AdminCluster
from hub_ext.service.admin.handlers import AdminContext, admin_api_routes
from hub_ext.service.admin.pages import (
    PagesContext,
    member_page_routes,
    page_routes,
    template_environment,
)
from hub_ext.service.admin.workflow import AdminWorkflow
from hub_ext.service.handlers import (
    CallbackHandler,
    OpenAPIHandler,
    ServerSharesHandler,
    ServiceContext,
    SharesHandler,
)
from hub_ext.service.hub_api import HUB_TIMEOUT_SECONDS, HubAPI
from hub_ext.service.promotion_settings import PromotionConfig
from hub_ext.service.store import Store, StoreUnavailable
from hub_ext.service.team_handlers import team_routes

CONFIG_ENV = "MLTEAMS_SERVICE_CONFIG"
SERVICE_NAME = "mlteams"
PAGES_SERVICE_NAME = "mlteams-admin"
PAGES_TOKEN_ENV = "MLTEAMS_ADMIN_PAGES_TOKEN"
# how often a managed service checks that the hub which started it still runs
PARENT_CHECK_SECONDS = 2.0


class MLTeamsService(Application):
    """The hub-managed service of jupyterhub-mlteams: sharing servers within teams, and governed
    model promotion."""

    classes = [PromotionConfig]  # noqa: RUF012  (traitlets reads it from the class)

    name = "mlteams-service"
    description = (
        "The mlteams service of jupyterhub-mlteams: started by the hub as a managed service "
        "(see docs/admin/sharing.md)."
    )

    service_url = Unicode(
        config=True,
        help="""The URL the hub routes `/services/mlteams/` to; from `JUPYTERHUB_SERVICE_URL`,
        set by the hub for its managed services.""",
    )

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "")

    ip = Unicode(
        config=True,
        help="""The address to listen on. Default: the host of `service_url` when it is an IP
        address or `localhost`, else every interface (a hostname such as `hub` in the Zero to
        JupyterHub chart names the hub pod's Service, not an address of the pod).""",
    )

    @default("ip")
    def _default_ip(self) -> str:
        host = urlparse(self.service_url).hostname or ""
        if host == "localhost":
            return host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return ""
        return host

    prefix = Unicode(
        config=True,
        help="The URL prefix of the service; from `JUPYTERHUB_SERVICE_PREFIX`.",
    )

    @default("prefix")
    def _default_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")

    hub_api_url = Unicode(
        config=True,
        help="The hub's REST API; from `JUPYTERHUB_API_URL`, set by the hub.",
    )

    @default("hub_api_url")
    def _default_hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    api_token = Unicode(
        config=True,
        help="""The service's token for the hub's REST API; from `JUPYTERHUB_API_TOKEN`, set by
        the hub. Its permissions are the service's role (docs/admin/sharing.md).""",
    )

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    teams_config = Unicode(
        config=True,
        help=f"""The hub's `MLTeams` section as JSON; from `{CONFIG_ENV}`, which the hub sets
        when its configuration calls `hub_ext.service.hub_config.configure_service(c)`.""",
    )

    @default("teams_config")
    def _default_teams_config(self) -> str:
        return os.environ.get(CONFIG_ENV, "")

    hub_timeout = Float(
        HUB_TIMEOUT_SECONDS,
        config=True,
        help="Seconds a call to the hub's REST API may take before the caller gets a 503.",
    )

    pages_token = Unicode(
        config=True,
        help=f"""The API token of the `{PAGES_SERVICE_NAME}` service entry, the admin pages'
        OAuth client (`{PAGES_TOKEN_ENV}`, set by `configure_service`). Empty: no admin pages
        (the admin JSON API still answers).""",
    )

    @default("pages_token")
    def _default_pages_token(self) -> str:
        return os.environ.get(PAGES_TOKEN_ENV, "")

    pages_prefix = Unicode(
        config=True,
        help=f"""The URL prefix of the admin pages (default
        `<hub base URL>services/{PAGES_SERVICE_NAME}/`).""",
    )

    @default("pages_prefix")
    def _default_pages_prefix(self) -> str:
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        return base.rstrip("/") + f"/services/{PAGES_SERVICE_NAME}/"

    template_paths = List(
        Unicode(),
        config=True,
        help="""Folders searched for templates before the hub's own (the chart's custom
        templates): the admin pages extend `page.html` from the first folder that has one.""",
    )

    lead_grant_limit = Integer(
        2,
        config=True,
        help="""The most extra GPUs a team lead may grant one member (directly or by approving
        their request); more needs a platform admin.""",
    )

    @validate("lead_grant_limit")
    def _check_lead_grant_limit(self, proposal: Any) -> int:
        if not 0 <= proposal.value <= 64:
            raise TraitError(
                f"MLTeamsService.lead_grant_limit must be from 0 to 64, got {proposal.value}"
            )
        return int(proposal.value)

    poll_seconds = Float(
        15.0,
        config=True,
        help="""How often the service looks for overrides that reached their expiry (their
        ResourceQuotas follow) and notes the teams' GPU pods for the GPU-hours.""",
    )

    @validate("poll_seconds")
    def _check_poll_seconds(self, proposal: Any) -> float:
        if not 1.0 <= proposal.value <= 3600.0:
            raise TraitError(
                f"MLTeamsService.poll_seconds must be from 1 to 3600, got {proposal.value}"
            )
        return float(proposal.value)

    gc_threshold = Integer(
        100_000,
        config=True,
        help="""Allocations between two collections of Python's youngest garbage generation in
        the service (`gc.set_threshold`; Python's default is 700). The service keeps every
        server's pod in memory and a page view allocates a few hundred thousand objects: with the
        default, collections that scan the pods make the slowest page views several times slower
        (benchmarks/admin_page.py). 0 keeps Python's settings.""",
    )

    @validate("gc_threshold")
    def _check_gc_threshold(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise TraitError(
                f"MLTeamsService.gc_threshold must be 0 (Python's settings) or more, got "
                f"{proposal.value}"
            )
        return int(proposal.value)

    def load_teams(self) -> MLTeamsSection:
        """The validated ``MLTeams`` section; exits with the problems named by key."""
        if not self.teams_config:
            self.exit_with(
                f"{CONFIG_ENV} is not set: start the service from the hub, with "
                "configure_service(c) in the hub's configuration (docs/admin/sharing.md)."
            )
        try:
            raw: Any = json.loads(self.teams_config)
        except ValueError as exc:
            self.exit_with(f"{CONFIG_ENV} is not JSON: {exc}")
        try:
            return load_config(raw)
        except ConfigError as exc:
            self.exit_with(f"the MLTeams configuration is invalid:\n{exc}")

    def exit_with(self, message: str) -> NoReturn:
        print(f"mlteams-service: {message}", file=sys.stderr)
        raise SystemExit(1)

    def missing_settings(self) -> list[str]:
        needed = {
            "JUPYTERHUB_SERVICE_URL (MLTeamsService.service_url)": self.service_url,
            "JUPYTERHUB_API_URL (MLTeamsService.hub_api_url)": self.hub_api_url,
            "JUPYTERHUB_API_TOKEN (MLTeamsService.api_token)": self.api_token,
        }
        return [name for name, value in needed.items() if not value]

    def make_app(
        self,
        config: MLTeamsSection,
        promotion: PromotionConfig | None = None,
        admin: AdminWorkflow | None = None,
    ) -> web.Application:
        """The tornado application, every route under ``prefix`` (and the admin pages under
        ``pages_prefix`` when they have a token)."""
        hub_auth = HubOAuth(
            api_url=self.hub_api_url, api_token=self.api_token, base_url=self.prefix
        )
        hub = HubAPI(self.hub_api_url, self.api_token, self.hub_timeout)
        context = ServiceContext(hub_auth, hub, config)
        prefix = self.prefix.rstrip("/")
        promotion = promotion or PromotionConfig(parent=self)
        routes: list[Any] = [
            *promotion.routes(prefix, context),
            *team_routes(prefix, context, promotion, admin=admin),
            (rf"{prefix}/api/shares", SharesHandler, {"context": context}),
            (rf"{prefix}/api/shares/([^/]*)", ServerSharesHandler, {"context": context}),
            (rf"{prefix}/api/openapi.yaml", OpenAPIHandler),
            (rf"{prefix}/oauth_callback", CallbackHandler, {"context": context}),
        ]
        if admin is not None:
            routes += admin_api_routes(prefix, AdminContext(context, admin))
            members = PagesContext(
                hub_auth,
                hub,
                config,
                admin,
                template_environment(list(self.template_paths)),
                admin_url=self.pages_prefix,
            )
            routes += member_page_routes(prefix, members)
            if self.pages_token:
                routes += self._page_routes(config, hub, admin, promotion)
        return web.Application(routes, cookie_secret=os.urandom(32), log_function=_log_request)

    def _page_routes(
        self,
        config: MLTeamsSection,
        hub: HubAPI,
        admin: AdminWorkflow,
        promotion: PromotionConfig,
    ) -> list[Any]:
        pages_auth = HubOAuth(
            api_url=self.hub_api_url,
            api_token=self.pages_token,
            base_url=self.pages_prefix,
            oauth_client_id=f"service-{PAGES_SERVICE_NAME}",
            oauth_redirect_uri=self.pages_prefix + "oauth_callback",
            access_scopes={f"access:services!service={PAGES_SERVICE_NAME}"},
        )
        pages = PagesContext(
            pages_auth,
            hub,
            config,
            admin,
            template_environment(list(self.template_paths)),
            promotions=promotion.promotions,
            admin_url=self.pages_prefix,
        )
        return page_routes(self.pages_prefix.rstrip("/"), pages)

    def start(self) -> None:
        missing = self.missing_settings()
        if missing:
            self.exit_with(
                "not started by the hub: missing " + ", ".join(missing) + " (docs/admin/sharing.md)"
            )
        config = self.load_teams()
        promotion = PromotionConfig(parent=self)
        problems = promotion.problems()
        if problems:
            self.exit_with("promotion is misconfigured:\n" + "\n".join(problems))
        url = urlparse(self.service_url)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            asyncio.run(self._serve(config, promotion, port))
        except KeyboardInterrupt:
            pass
        self.log.info("mlteams service stopped")

    async def _serve(self, config: MLTeamsSection, promotion: PromotionConfig, port: int) -> None:
        store = Store(promotion.db_url)
        try:
            await asyncio.to_thread(store.migrate)
        except StoreUnavailable as exc:
            self.exit_with(f"the service's database does not answer: {exc}")
        await promotion.start(config, store)
        admin = AdminWorkflow(config, store, AdminCluster(), lead_grant_limit=self.lead_grant_limit)
        await admin.cluster.watch(self.log)
        tune_gc(self.gc_threshold)
        app = self.make_app(config, promotion, admin)
        server = app.listen(port, address=self.ip, xheaders=True)
        stopping = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        self.log.info("mlteams service listening on %s:%s%s", self.ip or "*", port, self.prefix)
        if self.pages_token:
            self.log.info("mlteams admin pages at %s", self.pages_prefix)
        watcher = asyncio.ensure_future(self._watch(admin, stopping))
        orphaned = asyncio.ensure_future(self._stop_when_orphaned(stopping))
        await stopping.wait()
        server.stop()
        await watcher
        await orphaned
        await promotion.stop()
        await admin.cluster.close()
        store.close()

    async def _stop_when_orphaned(self, stopping: asyncio.Event) -> None:
        """Stop when the process that started the service (the hub, for a managed service) is
        gone: a hub killed outright cannot stop its services, and the next hub starts its own."""
        parent = os.getppid()
        if parent <= 1:
            return
        while not stopping.is_set():
            if os.getppid() != parent:
                self.log.warning(
                    "the hub that started this service (pid %s) exited; stopping", parent
                )
                stopping.set()
                return
            try:
                await asyncio.wait_for(stopping.wait(), PARENT_CHECK_SECONDS)
            except asyncio.TimeoutError:
                pass

    async def _watch(self, admin: AdminWorkflow, stopping: asyncio.Event) -> None:
        """Every ``poll_seconds``: end what expired (ResourceQuotas follow, first of all at
        start) and note the teams' GPU pods."""
        seen: dict[str, Any] | None = None  # at start: every team's quota is applied
        while not stopping.is_set():
            try:
                seen = await admin.expire_due(seen)
                await admin.sample()
            except Exception:
                self.log.exception("mlteams: the periodic check failed; it runs again")
            try:
                await asyncio.wait_for(stopping.wait(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass


def tune_gc(threshold: int) -> None:
    """Collect the youngest generation every ``threshold`` allocations, and leave what is in
    memory now (the pods listed at start) out of later collections; 0 changes nothing."""
    if threshold <= 0:
        return
    gc.freeze()
    gc.set_threshold(threshold, 50, 1000)


def _log_request(handler: web.RequestHandler) -> None:
    status = handler.get_status()
    log = access_log.info if status < 500 else access_log.error
    request = handler.request
    log("%s %s %s %.1fms", status, request.method, request.path, 1000 * request.request_time())


def main(argv: list[str] | None = None) -> None:
    """The `mlteams-service` command."""
    MLTeamsService.launch_instance(argv)
