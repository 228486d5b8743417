"""What a platform admin sets up once per team before its champions are served through KServe.

A key that may only read the team's part of the governed prefix
(``s3://<governed bucket>/<team>/``), kept in a Secret of the team's namespace with KServe's S3
annotations, and the ServiceAccount whose ``secrets`` name it: the InferenceService names only
the ServiceAccount (``MLTeams.teams.<team>.serving.service_account``), and KServe hands the key to
its storage initializer. The same objects on a real cluster: docs/admin/serving.md.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlparse

from .kubeapi import ApiError, KubeAPI, create_if_missing, ensure_namespace
from .object_store import REGION, ObjectStore, S3Credentials

DEFAULT_ACCOUNT = "mlteams-serving"
DEFAULT_SECRET = "mlteams-serving-s3"
ENDPOINT_ANNOTATION = "serving.kserve.io/s3-endpoint"
HTTPS_ANNOTATION = "serving.kserve.io/s3-usehttps"
REGION_ANNOTATION = "serving.kserve.io/s3-region"


def governed_read_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """Reading the objects under ``bucket/prefix/`` (and listing them), nothing else."""
    folder = prefix.strip("/") + "/"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{folder}*"]}},
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{folder}*"],
            },
        ],
    }


def serving_secret(name: str, creds: S3Credentials, endpoint_url: str) -> dict[str, Any]:
    """The Secret KServe's storage initializer reads S3 credentials from."""
    endpoint = urlparse(endpoint_url)

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/part-of": "jupyterhub-mlteams"},
            "annotations": {
                ENDPOINT_ANNOTATION: endpoint.netloc,
                HTTPS_ANNOTATION: "1" if endpoint.scheme == "https" else "0",
                REGION_ANNOTATION: REGION,
            },
        },
        "type": "Opaque",
        "data": {
            "AWS_ACCESS_KEY_ID": b64(creds.access_key),
            "AWS_SECRET_ACCESS_KEY": b64(creds.secret_key),
        },
    }


def serving_account(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "jupyterhub-mlteams"}},
        "secrets": [{"name": secret}],
    }


def publish_serving_key(
    api: KubeAPI,
    store: ObjectStore,
    *,
    team: str,
    namespace: str,
    bucket: str,
    account: str = DEFAULT_ACCOUNT,
    secret: str = DEFAULT_SECRET,
) -> S3Credentials:
    """A read-only key on ``bucket/<team>/``, its Secret and the ServiceAccount naming it."""
    creds = S3Credentials(f"{team}-serving-reader", secrets.token_urlsafe(30))
    policy = f"{team}-governed-read"
    admin = store.admin()
    admin.policy_add(policy, policy=governed_read_policy(bucket, team))
    admin.user_add(creds.access_key, creds.secret_key)
    admin.attach_policy([policy], user=creds.access_key)
    ensure_namespace(api, namespace)
    body = serving_secret(secret, creds, store.endpoint_url)
    try:
        api.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body)
    except ApiError as exc:
        if exc.status != 409:
            raise
        # a platform kept from an earlier start: the key was just replaced, so is its Secret
        api.request("PUT", f"/api/v1/namespaces/{namespace}/secrets/{secret}", body)
    create_if_missing(
        api, f"/api/v1/namespaces/{namespace}/serviceaccounts", serving_account(account, secret)
    )
    return creds
