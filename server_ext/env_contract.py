"""The environment the spawner gives a user's server, and through it every kernel.

The hub writes these variables into the pod spec; the server extension and the kernel hook only
read them. Tracking settings therefore come from hub configuration, never from a request, and
credentials arrive as Kubernetes secret references that the kubelet resolves.
"""

from __future__ import annotations

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

DEFAULT_HTTP_TIMEOUT = "10"
DEFAULT_HTTP_MAX_RETRIES = "1"

SECRET_ENV_NAMES = (TRACKING_TOKEN, TRACKING_USERNAME, TRACKING_PASSWORD)
"""Variables that carry credentials: only ever set from a secret reference, never echoed."""
