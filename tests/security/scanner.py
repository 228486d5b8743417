"""Searching what the suite saw for the secret values of the rig.

A secret is a ``name -> value`` pair; a source is a place (a log file, a recorded response, a pod
spec) with its bytes. A finding names the secret and the place, never the value, so a failure
message can be printed and kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

MIN_SECRET_LENGTH = 12
"""Shorter values would be found as ordinary words; every secret the rig generates is longer."""

SERVER_TOKEN_VARIABLES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "MLFLOW_TRACKING_TOKEN")
"""Where KubeSpawner (and the tracking settings, ``policy/notebook_pod.py``) put a server's own
hub token in its pod's environment."""


@dataclass(frozen=True, order=True)
class Finding:
    secret: str
    where: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.where}"


@dataclass(frozen=True)
class Source:
    where: str
    data: bytes


def needles(value: str) -> list[bytes]:
    """The forms of ``value`` to look for: as is, and URL-encoded when that differs."""
    forms = [value.encode()]
    encoded = quote(value, safe="").encode()
    if encoded != forms[0]:
        forms.append(encoded)
    return forms


def scan(secrets: Mapping[str, str], sources: Iterable[Source]) -> list[Finding]:
    """Every (secret, place) where a secret's value occurs, sorted; a place is named once per
    secret."""
    searched = {
        name: needles(value) for name, value in secrets.items() if len(value) >= MIN_SECRET_LENGTH
    }
    found: set[Finding] = set()
    for source in sources:
        for name, forms in searched.items():
            if any(form in source.data for form in forms):
                found.add(Finding(name, source.where))
    return sorted(found)


def too_short(secrets: Mapping[str, str]) -> list[str]:
    """The names of secrets too short to be searched for meaningfully."""
    return sorted(name for name, value in secrets.items() if len(value) < MIN_SECRET_LENGTH)


def log_sources(roots: Iterable[Path], pattern: str = "*.log") -> Iterator[Source]:
    """Every file matching ``pattern`` below ``roots`` (the rig's process logs and the pods'
    container logs)."""
    for root in roots:
        for path in sorted(root.rglob(pattern)):
            if path.is_file():
                try:
                    yield Source(str(path), path.read_bytes())
                except OSError:
                    continue


@dataclass(frozen=True)
class PodSpec:
    """One pod as the apiserver received it (create or update), from its audit log."""

    where: str
    pod: dict[str, Any]

    def own_token(self) -> str | None:
        """The server's own hub token, when this pod is a single-user server's."""
        for container in self.pod.get("spec", {}).get("containers", []):
            for variable in container.get("env") or []:
                if variable.get("name") == "JUPYTERHUB_API_TOKEN" and variable.get("value"):
                    return str(variable["value"])
        return None

    def without_own_token(self) -> dict[str, Any]:
        """The pod with its own server token's variables left out: KubeSpawner hands a server
        its token as a plain environment value and JupyterHub offers no other way, so that
        value, in that pod only, is the one allowed; every other secret in the spec, and the
        same token anywhere else, is still a finding."""
        own = self.own_token()
        pod = json.loads(json.dumps(self.pod))
        if own is None:
            return pod
        for key in ("containers", "initContainers"):
            for container in pod.get("spec", {}).get(key) or []:
                container["env"] = [
                    variable
                    for variable in container.get("env") or []
                    if not (
                        variable.get("name") in SERVER_TOKEN_VARIABLES
                        and variable.get("value") == own
                    )
                ]
        return pod


def audit_pods(path: Path) -> list[PodSpec]:
    """The pods in the apiserver's audit log (one JSON event per line, ``requestObject`` the pod
    as sent)."""
    pods: list[PodSpec] = []
    if not path.exists():
        return pods
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        pod = event.get("requestObject")
        if not isinstance(pod, dict) or pod.get("kind") != "Pod":
            continue
        ref = event.get("objectRef") or {}
        name = ref.get("name") or pod.get("metadata", {}).get("name") or "?"
        where = f"pod {ref.get('namespace', '?')}/{name} ({event.get('verb')}, {path}:{number})"
        pods.append(PodSpec(where, pod))
    return pods


def pod_sources(pods: Iterable[PodSpec]) -> Iterator[Source]:
    for pod in pods:
        yield Source(pod.where, json.dumps(pod.without_own_token()).encode())
