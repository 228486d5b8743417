"""Scoring a frozen model in its team's namespace: one Kubernetes Job per evaluation.

The service writes the features and a spec under a temporary prefix of the governed bucket,
presigns GET URLs for the spec, the model's files and the features and a PUT URL for the
predictions, and creates the Job (``hub_ext.policy.evaluation_job``) running
``python -m server_ext.evaluation`` from the team's image, with no credentials. It polls the
Job until it succeeds, fails or runs past its deadline, reads the predictions, and always
deletes the Job and the temporary objects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from hub_ext.policy.evaluation_job import render_evaluation_job

from .freeze import Frozen
from .object_store import ObjectMissing, ObjectStore, StoreUnavailable, join_uri

POLL_INTERVAL_SECONDS = 1.0
DEADLINE_MARGIN_SECONDS = 30.0
"""How long past the Job's own deadline the service waits for the Job controller to end it."""
URL_MARGIN_SECONDS = 300
DEFAULT_CPU = "1"
DEFAULT_MEMORY = "2Gi"
JOB_NAME_PREFIX = "mlteams-eval-"
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


class EvaluationFailed(Exception):
    """The evaluation gave no predictions; ``message`` says why in a data scientist's words.

    ``reason``: ``failed`` (the Job ran and failed), ``timeout`` (it did not finish in time),
    ``refused`` (Kubernetes refused the Job) or ``unavailable`` (Kubernetes or the store did not
    answer).
    """

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def job_name(promotion_id: str) -> str:
    """A DNS-1123 label for the Job of ``promotion_id``, unique per evaluation."""
    slug = _NOT_LABEL.sub("-", promotion_id.lower()).strip("-")[:32].strip("-") or "model"
    return f"{JOB_NAME_PREFIX}{slug}-{secrets.token_hex(3)}"


async def _put_inputs(
    store: ObjectStore, frozen: Frozen, features_csv: bytes, work: str, expires: int
) -> tuple[str, str]:
    """Write the features and the spec; ``(spec GET url, predictions uri)``."""
    features_uri = join_uri(work, "features.csv")
    predictions_uri = join_uri(work, "predictions.json")
    await store.put(features_uri, features_csv, "text/csv")
    spec = {
        "model_files": {
            path: await store.presign_get(frozen.file_uri(path), expires)
            for path in sorted(frozen.files)
        },
        "features_url": await store.presign_get(features_uri, expires),
        "predictions_url": await store.presign_put(predictions_uri, expires),
    }
    spec_uri = join_uri(work, "spec.json")
    await store.put(spec_uri, json.dumps(spec).encode(), "application/json")
    return await store.presign_get(spec_uri, expires), predictions_uri


def _condition(job: Any, *types: str) -> Any:
    for condition in (job.status.conditions if job.status else None) or ():
        if condition.type in types and condition.status == "True":
            return condition
    return None


def _outcome(job: Any) -> tuple[str, str] | None:
    """``("succeeded", "")``, ``("failed", reason)``, or ``None`` while it runs."""
    status = job.status
    if _condition(job, "Complete", "SuccessCriteriaMet") or (status and status.succeeded):
        return "succeeded", ""
    failed = _condition(job, "Failed", "FailureTarget")
    if failed is not None:
        return "failed", str(failed.reason or "")
    if status and status.failed:
        return "failed", ""
    return None


async def _pod_report(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """How the Job's container ended (or why it is waiting), for the message; may be empty."""
    try:
        pods = await core.list_namespaced_pod(namespace, label_selector=f"job-name={name}")
    except ApiException:
        return ""
    for pod in pods.items:
        for status in (pod.status.container_statuses if pod.status else None) or ():
            state = status.state
            if state and state.terminated:
                ended = state.terminated
                text = f"its container ended with exit code {ended.exit_code}"
                if ended.reason:
                    text += f" ({ended.reason})"
                if ended.message:
                    text += f": {' '.join(str(ended.message).split())[:300]}"
                return text
            if state and state.waiting and state.waiting.reason:
                waiting = state.waiting
                text = f"its container is waiting: {waiting.reason}"
                if waiting.message:
                    text += f" ({' '.join(str(waiting.message).split())[:300]})"
                return text
        if pod.status and pod.status.reason:
            return f"its pod failed: {pod.status.reason}"
    return ""


async def _reported_error(store: ObjectStore, predictions_uri: str) -> str:
    """The one-line reason the Job uploaded instead of predictions; empty when none."""
    try:
        body = json.loads(await store.get(predictions_uri))
    except (ObjectMissing, StoreUnavailable, ValueError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else ""


async def _read_predictions(store: ObjectStore, predictions_uri: str) -> list[Any]:
    try:
        body = json.loads(await store.get(predictions_uri))
    except ObjectMissing:
        raise EvaluationFailed("the evaluation finished but uploaded no predictions") from None
    except ValueError:
        raise EvaluationFailed("the evaluation's predictions are not JSON") from None
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list):
        raise EvaluationFailed("the evaluation's upload holds no list of predictions")
    return predictions


async def _wait(
    batch: client.BatchV1Api, namespace: str, name: str, timeout: float, interval: float
) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            job = await batch.read_namespaced_job_status(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return "failed", "the evaluation Job was deleted before it finished"
            raise
        outcome = _outcome(job)
        if outcome is not None:
            return outcome
        if time.monotonic() >= deadline:
            return "timeout", ""
        await asyncio.sleep(interval)


async def run_evaluation(
    kube_api_client: client.ApiClient,
    store: ObjectStore,
    *,
    namespace: str,
    image: str,
    frozen: Frozen,
    features_csv: bytes,
    work_prefix_uri: str,
    team: str,
    model: str,
    promotion_id: str,
    timeout_seconds: int,
    cpu: str = DEFAULT_CPU,
    memory: str = DEFAULT_MEMORY,
    poll_interval: float = POLL_INTERVAL_SECONDS,
) -> list[Any]:
    """Score ``frozen`` on ``features_csv`` in a Job in ``namespace``; its predictions, in row
    order. Raises ``EvaluationFailed``. The Job and everything under ``work_prefix_uri`` are
    deleted whatever happens."""
    batch = client.BatchV1Api(kube_api_client)
    core = client.CoreV1Api(kube_api_client)
    work = work_prefix_uri.rstrip("/")
    name = job_name(promotion_id)
    expires = int(timeout_seconds) + URL_MARGIN_SECONDS
    created = False
    try:
        try:
            spec_url, predictions_uri = await _put_inputs(
                store, frozen, features_csv, work, expires
            )
        except StoreUnavailable as exc:
            raise EvaluationFailed(str(exc), "unavailable") from None
        manifest: Any = render_evaluation_job(  # the client takes a plain dict as the body
            name=name,
            namespace=namespace,
            image=image,
            spec_url=spec_url,
            team=team,
            model=model,
            promotion_id=promotion_id,
            timeout_seconds=int(timeout_seconds),
            cpu=cpu,
            memory=memory,
        )
        try:
            await batch.create_namespaced_job(namespace, manifest)
        except ApiException as exc:
            raise EvaluationFailed(_refusal(exc, namespace), "refused") from None
        created = True
        try:
            outcome, reason = await _wait(
                batch, namespace, name, timeout_seconds + DEADLINE_MARGIN_SECONDS, poll_interval
            )
        except ApiException as exc:
            raise EvaluationFailed(
                f"Kubernetes did not answer about the evaluation Job: {exc.reason}", "unavailable"
            ) from None
        if outcome == "succeeded":
            return await _read_predictions(store, predictions_uri)
        if outcome == "timeout" or reason == "DeadlineExceeded":
            report = await _pod_report(core, namespace, name)
            suffix = f" ({report})" if report.startswith("its container is waiting") else ""
            raise EvaluationFailed(
                f"the evaluation did not finish within {int(timeout_seconds)} s{suffix}",
                "timeout",
            )
        error = await _reported_error(store, predictions_uri)
        if error:
            raise EvaluationFailed(f"the evaluation failed: {error}")
        report = await _pod_report(core, namespace, name)
        raise EvaluationFailed(
            f"the evaluation failed: {report or reason or 'the Job reported a failure'}"
        )
    finally:
        if created:
            with contextlib.suppress(ApiException):
                await batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        with contextlib.suppress(StoreUnavailable):
            await store.delete_prefix(work)


def _refusal(exc: ApiException, namespace: str) -> str:
    detail = exc.reason or ""
    with contextlib.suppress(ValueError, TypeError):
        detail = str(json.loads(exc.body or b"{}").get("message") or detail)
    if exc.status == 403:
        return (
            f"the service may not start evaluation Jobs in namespace {namespace} "
            f"(ask your platform admins to apply the team's RBAC): {detail}"
        )
    if exc.status == 404:
        return f"namespace {namespace} does not exist: {detail}"
    return f"Kubernetes refused the evaluation Job: {detail}"
