"""HTTP handlers under /mlteams/."""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from tornado import web

from . import __version__


class StatusHandler(APIHandler):
    """Report that the extension is loaded, and its version."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps({"extension": "jupyterhub-mlteams", "version": __version__}))


def default_handlers() -> list[tuple[str, type]]:
    return [(r"/mlteams/status", StatusHandler)]
