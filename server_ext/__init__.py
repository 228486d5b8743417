"""What jupyterhub-mlteams runs in a user's pod.

``server`` is the Jupyter server extension (the ``/mlteams/`` REST API), ``kernel`` what runs
inside each kernel (MLflow auto-tracking, dataset lineage), and ``contract`` what the hub and the
pod agree on (environment names, the dataset catalog, experiment names, pod labels).
"""

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from server_ext.server.app import MLTeamsExtension

    return [{"module": "server_ext", "app": MLTeamsExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab side panel, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "jupyterhub-mlteams"}]
