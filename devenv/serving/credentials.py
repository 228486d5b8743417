"""The storage initializer's object-store credentials, as KServe's credential builder sets them.
Pure.

KServe reads the predictor's ``serviceAccountName`` (``default`` when unset), then each Secret the
ServiceAccount lists under ``secrets``. A Secret with the data key ``AWS_SECRET_ACCESS_KEY`` (the
key names of KServe's default ``inferenceservice-config``) is an S3 secret: the key pair reaches
the storage initializer as ``secretKeyRef`` variables (never as values in the pod), and the
Secret's ``serving.kserve.io/s3-*`` annotations (or, without an annotation, the Secret's data key
of the variable's name) set the endpoint, TLS and region variables
(``pkg/credentials/s3/s3_secret.go`` and ``utils.go`` in kserve/kserve). A later Secret's variable
replaces an earlier one of the same name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .predictor import INVALID_PREDICTOR_SPEC, Refusal

ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
ENDPOINT_URL = "AWS_ENDPOINT_URL"
REGION = "AWS_DEFAULT_REGION"
S3_ENDPOINT = "S3_ENDPOINT"
S3_USE_HTTPS = "S3_USE_HTTPS"
S3_VERIFY_SSL = "S3_VERIFY_SSL"
ANONYMOUS = "awsAnonymousCredential"
VIRTUAL_BUCKET = "S3_USER_VIRTUAL_BUCKET"
ACCELERATE = "S3_USE_ACCELERATE"
CA_BUNDLE = "AWS_CA_BUNDLE"
CA_BUNDLE_CONFIGMAP = "AWS_CA_BUNDLE_CONFIGMAP"

PREFIX = "serving.kserve.io/"
ENDPOINT_ANNOTATION = PREFIX + "s3-endpoint"
HTTPS_ANNOTATION = PREFIX + "s3-usehttps"
REGION_ANNOTATION = PREFIX + "s3-region"

# (annotation, variable) in the order KServe adds them after the endpoint's
SETTINGS = (
    (PREFIX + "s3-verifyssl", S3_VERIFY_SSL),
    (PREFIX + "s3-useanoncredential", ANONYMOUS),
    (REGION_ANNOTATION, REGION),
    (PREFIX + "s3-usevirtualbucket", VIRTUAL_BUCKET),
    (PREFIX + "s3-useaccelerate", ACCELERATE),
    (PREFIX + "s3-cabundle", CA_BUNDLE),
    (PREFIX + "s3-cabundle-configmap", CA_BUNDLE_CONFIGMAP),
)


@dataclass(frozen=True)
class _Secret:
    name: str
    annotations: Mapping[str, str]
    data: Mapping[str, str]


def _decoded(data: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for key, value in data.items():
        try:
            values[key] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    return values


def _setting(secret: _Secret, annotation: str, variable: str) -> str:
    if annotation in secret.annotations:
        return str(secret.annotations[annotation])
    return secret.data.get(variable, "")


def _secret_ref(variable: str, secret: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": variable}}}


def endpoint_variables(secret: _Secret) -> list[dict[str, Any]]:
    endpoint = _setting(secret, ENDPOINT_ANNOTATION, S3_ENDPOINT).strip()
    if not endpoint:
        return []
    lowered = endpoint.lower()
    if lowered.startswith("https://"):
        use_https, host, url = "1", endpoint[len("https://") :], endpoint
    elif lowered.startswith("http://"):
        use_https, host, url = "0", endpoint[len("http://") :], endpoint
    else:
        use_https = _setting(secret, HTTPS_ANNOTATION, S3_USE_HTTPS)
        host = endpoint
        url = ("http://" if use_https == "0" else "https://") + endpoint
    variables = [{"name": S3_USE_HTTPS, "value": use_https}] if use_https else []
    variables += [{"name": S3_ENDPOINT, "value": host}, {"name": ENDPOINT_URL, "value": url}]
    return variables


def s3_variables(secret: _Secret) -> list[dict[str, Any]]:
    """The variables of one S3 Secret, in KServe's order."""
    variables = [
        _secret_ref(ACCESS_KEY_ID, secret.name),
        _secret_ref(SECRET_ACCESS_KEY, secret.name),
    ]
    variables += endpoint_variables(secret)
    for annotation, variable in SETTINGS:
        value = _setting(secret, annotation, variable)
        if value:
            variables.append({"name": variable, "value": value})
    return variables


def _merge(into: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {v["name"] for v in more}
    return [v for v in into if v["name"] not in names] + more


def storage_variables(
    service_account_name: str,
    service_account: dict[str, Any] | None,
    secrets: Mapping[str, dict[str, Any] | None],
) -> list[dict[str, Any]] | Refusal:
    """The storage initializer's credential variables from the ServiceAccount and the Secrets
    it lists (``secrets`` by name; None: not found)."""
    if service_account is None:
        return Refusal(
            "ServiceAccountNotFound",
            f"service account {service_account_name!r} (spec.predictor.serviceAccountName) not "
            "found: the storage initializer's credentials come from the Secrets it lists",
            INVALID_PREDICTOR_SPEC,
        )
    variables: list[dict[str, Any]] = []
    for ref in service_account.get("secrets") or []:
        name = str(ref.get("name", ""))
        found = secrets.get(name)
        if found is None:
            return Refusal(
                "SecretNotFound",
                f"secret {name!r}, listed by service account {service_account_name!r}, not found",
                INVALID_PREDICTOR_SPEC,
            )
        secret = _Secret(
            name=name,
            annotations=dict((found.get("metadata") or {}).get("annotations") or {}),
            data=_decoded(found.get("data") or {}),
        )
        if SECRET_ACCESS_KEY in secret.data:
            variables = _merge(variables, s3_variables(secret))
    return variables


def listed_secrets(service_account: dict[str, Any] | None) -> list[str]:
    """The names of the Secrets a ServiceAccount lists."""
    if service_account is None:
        return []
    return [str(ref.get("name", "")) for ref in service_account.get("secrets") or []]
