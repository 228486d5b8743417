"""The extension application that registers the /mlteams endpoints."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp

from .handlers import default_handlers


class MLTeamsExtension(ExtensionApp):
    """Jupyter server extension for ML teams."""

    name = "server_ext"

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
