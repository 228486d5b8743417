"""Serving a team's champion through KServe: apply its InferenceService, read its state back.

``InferenceServices`` is the Kubernetes edge: server-side apply with strict field validation
(so a field KServe's schema does not declare is refused, never silently pruned), reads and
deletes, and every API error turned into a ``ServingError`` an admin or a data scientist can act
on. ``Serving`` decides, per team, whether the service applies (``serving.mode: apply``), only
renders (``gitops``) or does nothing (serving off), and checks the frozen artifact's digest
before every apply. The InferenceService itself is rendered by
``hub_ext.policy.inference_service``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from hub_ext.policy.config import MLTeamsConfig
from hub_ext.policy.config import Serving as ServingSettings
from hub_ext.policy.inference_service import (
    API_GROUP,
    API_VERSION_NAME,
    PLURAL,
    ServedVersion,
    inference_service_name,
    render_inference_service,
    serving_state,
)
from hub_ext.service.freeze import verify
from hub_ext.service.object_store import ObjectStore

log = logging.getLogger("mlteams.serving")

FIELD_MANAGER = "jupyterhub-mlteams"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
TYPED_PATCH_REFUSAL = "field not declared in schema"
KUBE_DOWN = "The Kubernetes API is not answering right now; the model's serving was not changed."

Manifest = dict[str, Any]


class ServingError(Exception):
    """Serving could not be changed or read; ``message`` says why in the caller's words."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message


def _api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or exc.status)


def _refusal(exc: ApiException, namespace: str, verb: str) -> ServingError:
    message = _api_message(exc)
    if exc.status == 403:
        return ServingError(
            403,
            f"The mlteams service may not {verb} InferenceServices in namespace {namespace}; "
            "the team's RoleBinding to the mlteams-team ClusterRole grants it "
            "(mlteams-manifests prints it).",
        )
    if exc.status == 404 and "the server could not find the requested resource" in message:
        return ServingError(
            503,
            "This cluster has no KServe InferenceService API (serving.kserve.io/v1beta1); "
            "install KServe, or turn serving off for the team.",
        )
    # a server-side apply with a field the CRD does not declare is answered 500 ("failed to
    # create typed patch object ... field not declared in schema") by some apiservers
    if exc.status in (400, 422) or TYPED_PATCH_REFUSAL in message:
        return ServingError(
            422, f"The cluster refused the model's InferenceService in {namespace}: {message}"
        )
    if exc.status >= 500:
        return ServingError(503, KUBE_DOWN)
    return ServingError(502, f"The cluster answered {exc.status} to {verb}: {message}")


class InferenceServices:
    """InferenceService objects through the Kubernetes API."""

    def __init__(self, api: client.ApiClient, timeout: float = 30) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.timeout = timeout

    async def _call(self, call: Awaitable[Any], namespace: str, verb: str) -> Any:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except ApiException as exc:
            raise _refusal(exc, namespace, verb) from None
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("mlteams: Kubernetes API unreachable: %s", exc)
            raise ServingError(503, KUBE_DOWN) from None
        except Exception as exc:
            if type(exc).__module__.startswith("aiohttp"):
                raise ServingError(503, KUBE_DOWN) from None
            raise

    async def apply(self, manifest: Manifest) -> Manifest:
        metadata = manifest["metadata"]
        namespace = metadata["namespace"]
        result = await self._call(
            # the generated signature omits the client's _content_type keyword
            getattr(self.custom, "patch_namespaced_custom_object")(  # noqa: B009
                API_GROUP,
                API_VERSION_NAME,
                namespace,
                PLURAL,
                metadata["name"],
                manifest,
                field_manager=FIELD_MANAGER,
                field_validation="Strict",
                force=True,
                _content_type=APPLY_CONTENT_TYPE,
            ),
            namespace,
            "apply",
        )
        if result is None:
            # the client reads the object from a 200 answer only, not from a 201 (created)
            result = await self.read(namespace, metadata["name"])
        return dict(result or manifest)

    async def read(self, namespace: str, name: str) -> Manifest | None:
        try:
            result = await asyncio.wait_for(
                self.custom.get_namespaced_custom_object(
                    API_GROUP, API_VERSION_NAME, namespace, PLURAL, name
                ),
                self.timeout,
            )
        except ApiException as exc:
            if exc.status == 404 and "could not find the requested resource" not in (
                _api_message(exc)
            ):
                return None
            raise _refusal(exc, namespace, "read") from None
        except (OSError, asyncio.TimeoutError):
            raise ServingError(503, KUBE_DOWN) from None
        return dict(result)

    async def delete(self, namespace: str, name: str) -> None:
        try:
            await asyncio.wait_for(
                self.custom.delete_namespaced_custom_object(
                    API_GROUP, API_VERSION_NAME, namespace, PLURAL, name
                ),
                self.timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _refusal(exc, namespace, "delete") from None
        except (OSError, asyncio.TimeoutError):
            raise ServingError(503, KUBE_DOWN) from None


@dataclass(frozen=True)
class Applied:
    """What an apply replaced, so a step that fails after it can put it back."""

    namespace: str
    name: str
    before: Manifest | None


Undo = Callable[[], Awaitable[None]]


class Serving:
    """Per team: apply, render only, or leave serving alone."""

    def __init__(
        self, config: MLTeamsConfig, services: InferenceServices | None, objects: ObjectStore
    ) -> None:
        self.config = config
        self.services = services
        self.objects = objects

    def settings(self, team: str) -> ServingSettings:
        return self.config.teams[team].serving

    def applies(self, team: str) -> bool:
        settings = self.settings(team)
        return settings.enabled and settings.mode == "apply" and self.services is not None

    def render(self, served: ServedVersion) -> Manifest:
        return render_inference_service(served, self.settings(served.team))

    async def point(self, served: ServedVersion, frozen_uri: str) -> Applied | None:
        """Apply the InferenceService for ``served`` after checking its frozen files; ``None``
        when the team's serving is off or rendered only. Raises ``DigestMismatch`` when the
        frozen files changed, ``ServingError`` when the cluster refuses."""
        if not self.applies(served.team):
            return None
        assert self.services is not None
        await verify(self.objects, frozen_uri, served.artifact_sha256)
        manifest = self.render(served)
        namespace = served.namespace
        name = manifest["metadata"]["name"]
        before = await self.services.read(namespace, name)
        await self.services.apply(manifest)
        log.info(
            "mlteams: %s/%s now serves %s version %s",
            namespace,
            name,
            served.governed_name,
            served.version,
        )
        return Applied(namespace, name, before)

    async def restore(self, applied: Applied | None) -> None:
        """Put back what ``point`` replaced (or remove what it created)."""
        if applied is None or self.services is None:
            return
        try:
            if applied.before is None:
                await self.services.delete(applied.namespace, applied.name)
            else:
                await self.services.apply(_reapplicable(applied.before))
        except ServingError as exc:
            log.error(
                "mlteams: could not put InferenceService %s/%s back: %s",
                applied.namespace,
                applied.name,
                exc.message,
            )

    async def state(self, team: str, model: str) -> dict[str, Any] | None:
        """What the cluster reports of the model's InferenceService; ``None`` when the team's
        serving is off."""
        settings = self.settings(team)
        if not settings.enabled:
            return None
        namespace = self.config.teams[team].namespace
        name = inference_service_name(model)
        out: dict[str, Any] = {
            "mode": settings.mode,
            "name": name,
            "namespace": namespace,
            "deployment_mode": settings.deployment_mode,
        }
        if not self.applies(team):
            return out
        assert self.services is not None
        try:
            found = await self.services.read(namespace, name)
        except ServingError as exc:
            return {**out, "error": exc.message}
        if found is None:
            return {**out, "exists": False}
        return {**out, "exists": True, **serving_state(found).to_json()}


def _reapplicable(obj: Manifest) -> Manifest:
    """An object read from the cluster as an apply configuration: its identity, labels,
    annotations and spec, without what the server owns."""
    metadata = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "labels", "annotations")
            if key in metadata
        },
        "spec": obj.get("spec") or {},
    }
