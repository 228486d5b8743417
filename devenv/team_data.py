"""The teams' data plane on the local platform: buckets, read-only keys as Secrets, sample data.

What a platform admin does once per team before the hub serves it: a bucket on the object store
with a read-only key pair, and that pair in a Secret of the team's namespace, named by the
catalog's ``credentials_secret``. The hub then hands the Secret to the team's servers only as
references; the key values never pass through the hub.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from .kubeapi import KubeAPI, create_if_missing, ensure_namespace
from .object_store import ObjectStore, S3Credentials

KEY_ID_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY_KEY = "AWS_SECRET_ACCESS_KEY"


def credentials_secret(name: str, creds: S3Credentials) -> dict[str, Any]:
    """A Secret with the keys the catalog's default ``dataset_*_key`` settings expect."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "jupyterhub-mlteams"}},
        "type": "Opaque",
        "data": {KEY_ID_KEY: b64(creds.access_key), SECRET_KEY_KEY: b64(creds.secret_key)},
    }


def publish_team_keys(
    api: KubeAPI, store: ObjectStore, teams: Mapping[str, tuple[str, str]]
) -> dict[str, S3Credentials]:
    """For each ``team: (namespace, secret name)``: a bucket, a read-only key pair, the Secret."""
    credentials = store.add_teams(teams)
    for team, (namespace, secret) in teams.items():
        ensure_namespace(api, namespace)
        create_if_missing(
            api,
            f"/api/v1/namespaces/{namespace}/secrets",
            credentials_secret(secret, credentials[team]),
        )
    return credentials
