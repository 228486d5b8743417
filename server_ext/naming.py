"""Experiment names: one experiment per team, user and notebook path.

``teams/<team>/<user>/<path relative to the server root>`` keeps two users' ``train.ipynb``
apart (the user differs) and two folders' ``train.ipynb`` apart (the path differs).
"""

from __future__ import annotations

import posixpath

PREFIX = "teams"
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
    return f"{PREFIX}/{_component(team)}/{_component(user)}/{tail}"


def team_prefix(team: str) -> str:
    """The common prefix of the experiments of ``team``."""
    return f"{PREFIX}/{_component(team)}/"
