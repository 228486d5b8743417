"""What crosses the pod boundary between the hub and a user's server: the only code both import.

The hub writes a user's pod; the server extension and the kernel only read it. Everything they
must agree on lives here, in plain Python with no import beyond the standard library:

* the environment variables the spawner sets (tracking settings come from hub configuration,
  never from a request; credentials arrive as Kubernetes secret references, never as values,
  except the server's own hub token, which is ``MLFLOW_TRACKING_TOKEN`` too when no MLflow
  credentials are configured);
* the format of the team's dataset catalog in ``MLTEAMS_DATASETS``;
* experiment names, one experiment per team, user and notebook path;
* the labels and annotations on each team server's pod.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# -- environment variables ---------------------------------------------------------------------

TRACKING_URI = "MLFLOW_TRACKING_URI"
TRACKING_TOKEN = "MLFLOW_TRACKING_TOKEN"
TRACKING_USERNAME = "MLFLOW_TRACKING_USERNAME"
TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
HTTP_TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"
HTTP_MAX_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
EXPERIMENT_NAME = "MLFLOW_EXPERIMENT_NAME"

TEAM = "MLTEAMS_TEAM"
PROFILE = "MLTEAMS_PROFILE"
IMAGE = "MLTEAMS_IMAGE"
GPUS = "MLTEAMS_GPUS"
GPU_TYPE = "MLTEAMS_GPU_TYPE"
USER = "JUPYTERHUB_USER"
DATASETS = "MLTEAMS_DATASETS"
QUOTA = "MLTEAMS_QUOTA"
TRACKING_ENABLED = "MLTEAMS_TRACKING"
NOTEBOOK_ROOT = "MLTEAMS_NOTEBOOK_ROOT"
SESSION_NAME = "JPY_SESSION_NAME"
SERVICE_URL = "MLTEAMS_SERVICE_URL"
"""Where a user's server reaches the hub's ``mlteams`` service (its URL with the service prefix)."""
HUB_API_TOKEN = "JUPYTERHUB_API_TOKEN"
"""The server's own hub token, set by JupyterHub; the server calls the service with it."""
EVALUATION_SPEC_URL = "MLTEAMS_EVALUATION_SPEC_URL"
"""In an evaluation Job: a presigned GET URL of its JSON spec (``server_ext.evaluation``)."""

DEFAULT_HTTP_TIMEOUT = "10"
DEFAULT_HTTP_MAX_RETRIES = "1"

OBJECT_STORE_CLIENT = "FSSPEC_S3"
"""fsspec's defaults for ``s3://`` filesystems (JSON), read when fsspec is imported."""
DEFAULT_OBJECT_STORE_CLIENT = (
    '{"config_kwargs": {"connect_timeout": 5, "read_timeout": 10,'
    ' "retries": {"mode": "standard", "max_attempts": 1}}}'
)
"""An object store that accepts connections but does not answer fails a read in about 100 s (a
10-second idle timeout; s3fs tries each call 5 times and a read makes two, so botocore does not
retry as well), instead of the clients' defaults (60-second timeouts, each try retried by
botocore: more than 20 minutes); ``storage_options`` given to a reader still win."""

SECRET_ENV_NAMES = (TRACKING_TOKEN, TRACKING_USERNAME, TRACKING_PASSWORD)
"""Variables that carry credentials: set from a secret reference (or the server's own hub token,
as ``JUPYTERHUB_API_TOKEN`` is), never echoed."""

DATASET_KEY_ID = "MLTEAMS_S3_{slug}_KEY_ID"
DATASET_SECRET_KEY = "MLTEAMS_S3_{slug}_SECRET_KEY"
"""Names of the variables holding a dataset's object-store keys, per dataset slug."""

# -- pod labels and annotations ----------------------------------------------------------------

TEAM_LABEL = "mlteams.io/team"
PROFILE_LABEL = "mlteams.io/profile"
USER_ANNOTATION = "mlteams.io/user"
SERVER_ANNOTATION = "mlteams.io/server"

# -- experiment names --------------------------------------------------------------------------

EXPERIMENT_PREFIX = "teams"
NO_NOTEBOOK = "(no notebook)"


def _component(text: str) -> str:
    """A name component that cannot add a level: ``/`` and ``%`` are escaped."""
    return text.replace("%", "%25").replace("/", "%2F") or "_"


def relative_notebook_path(path: str, root: str = "") -> str:
    """``path`` relative to ``root`` when inside it, normalised, with ``/`` separators."""
    if not path:
        return ""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if root:
        base = posixpath.normpath(root.replace("\\", "/")).rstrip("/") or "/"
        if norm == base:
            return ""
        prefix = base if base.endswith("/") else base + "/"
        if norm.startswith(prefix):
            return norm[len(prefix) :]
    return norm.lstrip("/") if norm != "." else ""


def experiment_name(team: str, user: str, notebook_path: str) -> str:
    """The experiment of ``notebook_path`` (relative to the server root) of ``user`` in ``team``."""
    rel = relative_notebook_path(notebook_path)
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"notebook path must stay inside the server root: {notebook_path!r}")
    tail = "/".join(parts) if parts else NO_NOTEBOOK
    return f"{EXPERIMENT_PREFIX}/{_component(team)}/{_component(user)}/{tail}"


# -- the dataset catalog -----------------------------------------------------------------------


class CatalogError(ValueError):
    """The catalog in the environment is not what the hub writes."""


@dataclass(frozen=True)
class Credentials:
    """Names of the environment variables holding the object-store keys."""

    key_env: str
    secret_env: str


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset the user's team may use."""

    name: str
    uri: str
    format: str | None = None
    description: str = ""
    mount_path: str | None = None
    endpoint_url: str | None = None
    credentials: Credentials | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def dump_catalog(entries: list[CatalogEntry]) -> str:
    return json.dumps([e.to_json() for e in entries], sort_keys=True, separators=(",", ":"))


def parse_catalog(text: str | None) -> list[CatalogEntry]:
    """Entries from the ``MLTEAMS_DATASETS`` value; an empty catalog when unset."""
    if not text:
        return []
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"dataset catalog is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise CatalogError("dataset catalog must be a list")
    entries = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("name") or not item.get("uri"):
            raise CatalogError("each dataset needs a name and a uri")
        creds = item.get("credentials")
        entries.append(
            CatalogEntry(
                name=str(item["name"]),
                uri=str(item["uri"]),
                format=item.get("format"),
                description=str(item.get("description") or ""),
                mount_path=item.get("mount_path"),
                endpoint_url=item.get("endpoint_url"),
                credentials=Credentials(str(creds["key_env"]), str(creds["secret_env"]))
                if isinstance(creds, dict)
                else None,
            )
        )
    return entries


def catalog_from_env(environ: Mapping[str, str]) -> list[CatalogEntry]:
    return parse_catalog(environ.get(DATASETS))


# -- a run's environment (written by the kernel, read by the server extension) ------------------

TRACKING_PUBLIC_URL = "MLTEAMS_TRACKING_PUBLIC_URL"
"""The tracking server's address as a browser reaches it: the base of the run links the API gives
out. Unset: the tracking URI, when it is an http(s) address."""

KERNEL_NAME = "MLTEAMS_KERNEL_NAME"
"""The kernel spec's name, when its ``env`` sets it; recorded in a run's environment."""

ENVIRONMENT_DIR = "environment"
REQUIREMENTS_ARTIFACT = f"{ENVIRONMENT_DIR}/requirements.txt"
ENVIRONMENT_ARTIFACT = f"{ENVIRONMENT_DIR}/environment.json"
"""Run artifacts: the kernel's installed distributions (``name==version``, sorted) and the
environment document (Python, platform, image, git state, notebook, team, user)."""

TAG_IMAGE = "mlteams.image"
TAG_IMAGE_DIGEST = "mlteams.image_digest"
TAG_GIT_COMMIT = "mlteams.git_commit"
TAG_ENVIRONMENT = "mlteams.environment"
"""Run tags set with the environment; ``mlteams.environment`` names the artifact folder."""

# -- environments that persist (read by the server extension) -----------------------------------

HOME_PERSISTENT = "MLTEAMS_HOME_PERSISTENT"
"""``true`` when the server's home is a persistent volume (packages in ``~/.local`` and project
kernels survive a restart), ``false`` when it is not; unset: unknown."""


@dataclass(frozen=True)
class ImageRef:
    """An image reference (``MLTEAMS_IMAGE``, ``repo[:tag][@digest]``) split into its parts."""

    reference: str
    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def pinned(self) -> str | None:
        """The reference that pulls exactly this image (``name@digest``), when known."""
        return f"{self.name}@{self.digest}" if self.digest else None


_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def parse_image(reference: str) -> ImageRef | None:
    """``reference`` split; ``None`` when empty. A malformed digest is not a digest."""
    ref = reference.strip()
    if not ref:
        return None
    name, at, digest = ref.partition("@")
    valid = bool(at) and bool(_DIGEST.fullmatch(digest))
    if valid and digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
        valid = False
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :] or None
    return ImageRef(reference=ref, name=name, tag=tag, digest=digest if valid else None)


MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_GIT_BRANCH = "mlflow.source.git.branch"
MLFLOW_GIT_REPO_URL = "mlflow.source.git.repoURL"
MLFLOW_GIT_DIRTY = "mlflow.source.git.dirty"
"""MLflow's own git tags (``mlflow.utils.mlflow_tags``), set with the environment."""
