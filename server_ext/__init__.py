"""Jupyter server extension of jupyterhub-mlteams: tracking, datasets and promotion."""

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict]:
    from server_ext.server.app import MLTeamsExtension

    return [{"module": "server_ext", "app": MLTeamsExtension}]
