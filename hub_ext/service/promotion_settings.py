"""The service's promotion settings: the registry, the object store, the database, the Job.

Every setting is a traitlet of ``PromotionConfig`` whose default comes from an environment
variable, so that the z2jh chart passes them as ``hub.extraEnv`` entries from Secrets
(docs/admin/promotion.md). Promotion is off until ``registry_url`` is set; its endpoints then
say so.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlparse

from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from hub_ext.policy.config import MLTeamsSection

DEFAULT_DB_URL = "sqlite:////srv/jupyterhub/mlteams-service.sqlite"
NOT_SET_UP = (
    "Model promotion is not set up on this hub: the mlteams service has no MLflow registry "
    "(MLTEAMS_REGISTRY_URL). Ask your platform admins (docs/admin/promotion.md)."
)


def _env(name: str, fallback: str = "") -> str:
    return os.environ.get(name, fallback)


class PromotionConfig(LoggingConfigurable):
    """Governed promotion in the ``mlteams`` service."""

    registry_url = Unicode(
        config=True,
        help="""The MLflow tracking server the service registers governed models in, as the hub
        reaches it (`MLTEAMS_REGISTRY_URL`). Empty: promotion is off.""",
    )
    registry_username = Unicode(
        config=True,
        help="""The service's MLflow user (`MLTEAMS_REGISTRY_USERNAME`, default
        `mlteams-service`): the MLflow server's admin, and the one user the bundle's MLflow
        plugin lets change governed models.""",
    )
    registry_password = Unicode(
        config=True,
        help="The service's MLflow password (`MLTEAMS_REGISTRY_PASSWORD`), from a Secret.",
    )
    db_url = Unicode(
        config=True,
        help=f"""SQLAlchemy URL of the service's database: promotions, governed models and the
        append-only audit (`MLTEAMS_SERVICE_DB_URL`; default `{DEFAULT_DB_URL}`, on the hub's
        volume in the z2jh chart). PostgreSQL: `postgresql+psycopg://user:pw@host/db`.""",
    )
    object_store_endpoint = Unicode(
        config=True,
        help="""Endpoint of the S3-compatible store holding frozen models and the evaluation
        sets (`MLTEAMS_OBJECT_STORE_ENDPOINT`); empty for AWS S3. The evaluation Job downloads
        through presigned URLs of this endpoint, so it must be reachable from the team
        namespaces.""",
    )
    object_store_key_id = Unicode(
        config=True,
        help="""Access key id of the service's object-store credentials
        (`MLTEAMS_OBJECT_STORE_KEY_ID`), from a Secret: read the evaluation sets, write the
        governed prefix. Users never get these.""",
    )
    object_store_secret_key = Unicode(
        config=True,
        help="Secret access key of the same credentials (`MLTEAMS_OBJECT_STORE_SECRET_KEY`).",
    )
    object_store_region = Unicode(
        config=True, help="Region of the object store (`MLTEAMS_OBJECT_STORE_REGION`)."
    )
    governed_root = Unicode(
        config=True,
        help="""`s3://bucket[/prefix]` under which frozen models are kept
        (`MLTEAMS_GOVERNED_ROOT`, default `s3://mlteams-governed`). Only the service writes
        there; serving reads from there.""",
    )
    evaluation_cpu = Unicode(
        "1", config=True, help="CPU of each evaluation Job (request and limit)."
    )
    evaluation_memory = Unicode(
        "2Gi", config=True, help="Memory of each evaluation Job (request and limit)."
    )

    @default("registry_url")
    def _registry_url(self) -> str:
        return _env("MLTEAMS_REGISTRY_URL")

    @default("registry_username")
    def _registry_username(self) -> str:
        return _env("MLTEAMS_REGISTRY_USERNAME", "mlteams-service")

    @default("registry_password")
    def _registry_password(self) -> str:
        return _env("MLTEAMS_REGISTRY_PASSWORD")

    @default("db_url")
    def _db_url(self) -> str:
        return _env("MLTEAMS_SERVICE_DB_URL", DEFAULT_DB_URL)

    @default("object_store_endpoint")
    def _object_store_endpoint(self) -> str:
        return _env("MLTEAMS_OBJECT_STORE_ENDPOINT")

    @default("object_store_key_id")
    def _object_store_key_id(self) -> str:
        return _env("MLTEAMS_OBJECT_STORE_KEY_ID")

    @default("object_store_secret_key")
    def _object_store_secret_key(self) -> str:
        return _env("MLTEAMS_OBJECT_STORE_SECRET_KEY")

    @default("object_store_region")
    def _object_store_region(self) -> str:
        return _env("MLTEAMS_OBJECT_STORE_REGION", "us-east-1")

    @default("governed_root")
    def _governed_root(self) -> str:
        return _env("MLTEAMS_GOVERNED_ROOT", "s3://mlteams-governed")

    promotions: Any = None
    _store: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.registry_url)

    def problems(self) -> list[str]:
        """What stops promotion from working, each naming its setting; none when it is off."""
        if not self.enabled:
            return []
        problems = []
        if not self.registry_password:
            problems.append(
                "MLTEAMS_REGISTRY_PASSWORD (PromotionConfig.registry_password) is not set"
            )
        if not self.object_store_key_id or not self.object_store_secret_key:
            problems.append(
                "MLTEAMS_OBJECT_STORE_KEY_ID and MLTEAMS_OBJECT_STORE_SECRET_KEY "
                "(PromotionConfig.object_store_key_id/secret_key) must both be set"
            )
        root = urlparse(self.governed_root)
        if root.scheme != "s3" or not root.netloc:
            problems.append(
                f"MLTEAMS_GOVERNED_ROOT (PromotionConfig.governed_root) must be s3://bucket"
                f"[/prefix], got {self.governed_root!r}"
            )
        return problems

    async def start(self, config: MLTeamsSection, store: Any = None) -> None:
        """Migrate the database (unless ``store``, already migrated, is given), connect the
        adapters, fail what a previous run left evaluating."""
        if not self.enabled:
            self.log.info("mlteams: promotion is off (no MLTEAMS_REGISTRY_URL)")
            return
        from hub_ext.service.evaluation import run_evaluation
        from hub_ext.service.kube import kube_client
        from hub_ext.service.object_store import ObjectStore
        from hub_ext.service.promotions import Promotions, PromotionSettings
        from hub_ext.service.registry import Registry
        from hub_ext.service.serving import InferenceServices, Serving
        from hub_ext.service.store import Store

        if store is None:
            store = Store(self.db_url)
            await asyncio.to_thread(store.migrate)
            self._store = store
        objects = ObjectStore(
            self.object_store_endpoint,
            self.object_store_key_id,
            self.object_store_secret_key,
            region=self.object_store_region,
        )
        await objects.ensure_bucket(urlparse(self.governed_root).netloc)
        api = await kube_client()
        self._kube = api

        async def evaluate(**kwargs: Any) -> list[Any]:
            return await run_evaluation(
                api,
                objects,
                cpu=self.evaluation_cpu,
                memory=self.evaluation_memory,
                **kwargs,
            )

        registry = Registry(self.registry_url, self.registry_username, self.registry_password)
        self.promotions = Promotions(
            config,
            store,
            registry,
            objects,
            evaluate,
            PromotionSettings(governed_root=self.governed_root),
            serving=Serving(config, InferenceServices(api), objects),
        )
        failed = await self.promotions.recover()
        if failed:
            self.log.warning("mlteams: %d promotions were left evaluating; marked failed", failed)
        self.log.info(
            "mlteams: promotion on, registry %s, database %s",
            self.registry_url,
            _safe_url(self.db_url),
        )

    async def stop(self) -> None:
        kube = getattr(self, "_kube", None)
        if kube is not None:
            await kube.close()
        if self._store is not None:
            self._store.close()

    def routes(self, prefix: str, context: Any) -> list[Any]:
        """The promotion endpoints; on a hub where promotion is off they answer so (503)."""
        from hub_ext.service.promotion_handlers import PromotionContext, promotion_routes

        return promotion_routes(prefix, PromotionContext(context, self.promotions))


def _safe_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
