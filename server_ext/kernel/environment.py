"""A run's environment: the kernel's packages, its image, its git state, as data.

Pure: the values come in (distributions found, ``git`` output, the pod's variables), the
requirements text, the environment document and the run tags come out. ``environment_capture``
collects the inputs and logs the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from server_ext import contract as env
from server_ext.contract import ImageRef, parse_image

SCHEMA_VERSION = 1

__all__ = ["ImageRef", "parse_image"]  # the image reference's parts live in the contract


_DIST_INFO = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._]*)-(?P<version>[^-]+)\.dist-info")
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


# -- packages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """An installed distribution and the folder (``site-packages``) it was found in."""

    name: str
    version: str
    location: str = ""


def canonical_name(name: str) -> str:
    """The PEP 503 form of a distribution name (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_from_dist_info(folder: str) -> tuple[str, str] | None:
    """Name and version from a ``name-version.dist-info`` folder name; ``None`` otherwise."""
    found = _DIST_INFO.fullmatch(folder)
    if found is None:
        return None
    return canonical_name(found["name"]), found["version"]


def effective(dists: Iterable[Distribution]) -> list[Distribution]:
    """The distributions Python imports: the first of each name in path order, sorted by name."""
    seen: dict[str, Distribution] = {}
    for dist in dists:
        key = canonical_name(dist.name)
        if key and dist.version and key not in seen:
            seen[key] = Distribution(key, dist.version, dist.location)
    return [seen[k] for k in sorted(seen)]


def requirements_text(dists: Iterable[Distribution]) -> str:
    """``name==version`` lines, sorted, for ``pip install -r``."""
    return "".join(f"{d.name}=={d.version}\n" for d in effective(dists))


def inside(path: str, folder: str) -> bool:
    if not path or not folder:
        return False
    base = folder.rstrip("/") + "/"
    return path == folder.rstrip("/") or path.startswith(base)


# -- git -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitState:
    """The repository holding the notebook, as ``git`` reports it."""

    commit: str | None
    branch: str | None = None
    dirty: bool = False
    changed_files: int = 0
    remote_url: str | None = None
    root: str | None = None


def parse_status(output: str) -> GitState | None:
    """``git status --porcelain=v2 --branch`` output; ``None`` when it has no branch header."""
    commit: str | None = None
    branch: str | None = None
    header = False
    changed = 0
    for line in output.splitlines():
        if line.startswith("# branch.oid "):
            header = True
            value = line.split(" ", 2)[2].strip()
            commit = value if _COMMIT.fullmatch(value) else None
        elif line.startswith("# branch.head "):
            value = line.split(" ", 2)[2].strip()
            branch = None if value == "(detached)" else value
        elif line.startswith("#") or not line.strip():
            continue
        else:
            changed += 1
    if not header:
        return None
    return GitState(commit=commit, branch=branch, dirty=changed > 0, changed_files=changed)


def parse_remotes(output: str) -> str | None:
    """The fetch URL of ``origin`` (else of the first remote) from ``git remote -v``."""
    remotes: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and (len(parts) < 3 or parts[2] == "(fetch)"):
            remotes.setdefault(parts[0], parts[1])
    url = remotes.get("origin") or next(iter(remotes.values()), None)
    return clean_url(url) if url else None


def clean_url(url: str) -> str:
    """``url`` without credentials: user and password are dropped from ``scheme://`` URLs, except
    a bare user name on ``ssh://`` (``ssh://git@host/...``); scp-like ``git@host:path`` stays."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    if parts.scheme in ("ssh", "git+ssh") and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def relative_to(path: str, root: str | None) -> str | None:
    if not root or not inside(path, root):
        return None
    return path[len(root.rstrip("/")) :].lstrip("/") or None


# -- the environment document --------------------------------------------------------------------


@dataclass(frozen=True)
class Interpreter:
    version: str
    implementation: str
    executable: str
    prefix: str
    base_prefix: str
    platform: str
    system: str
    machine: str


def environment_document(
    *,
    interpreter: Interpreter,
    environ: Mapping[str, str],
    dists: Iterable[Distribution],
    git: GitState | None,
    notebook_path: str,
    home: str,
    captured_at: str,
) -> dict[str, Any]:
    """What ``environment/environment.json`` holds; keys without a value are left out."""
    packages = effective(dists)
    in_home = [f"{d.name}=={d.version}" for d in packages if inside(d.location, home)]
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "captured_at": captured_at,
        "python": {
            "version": interpreter.version,
            "implementation": interpreter.implementation,
            "executable": interpreter.executable,
            "prefix": interpreter.prefix,
            "base_prefix": interpreter.base_prefix,
        },
        "platform": {
            "platform": interpreter.platform,
            "system": interpreter.system,
            "machine": interpreter.machine,
        },
        "packages": {
            "count": len(packages),
            "requirements": env.REQUIREMENTS_ARTIFACT,
            "installed_in_home": in_home,
        },
    }
    kernel = environ.get(env.KERNEL_NAME, "")
    if kernel:
        doc["kernel"] = {"name": kernel}
    image = parse_image(environ.get(env.IMAGE, ""))
    if image is not None:
        doc["image"] = {
            k: v
            for k, v in {
                "reference": image.reference,
                "name": image.name,
                "tag": image.tag,
                "digest": image.digest,
                "pinned": image.pinned,
            }.items()
            if v
        }
    if git is not None and git.commit:
        doc["git"] = {
            k: v
            for k, v in {
                "commit": git.commit,
                "branch": git.branch,
                "dirty": git.dirty,
                "changed_files": git.changed_files,
                "remote_url": git.remote_url,
                "root": git.root,
                "notebook_path": relative_to(notebook_path, git.root),
            }.items()
            if v is not None
        }
    for key, value in (
        ("notebook_path", notebook_path),
        ("team", environ.get(env.TEAM, "")),
        ("user", environ.get(env.USER, "")),
        ("profile", environ.get(env.PROFILE, "")),
    ):
        if value:
            doc[key] = value
    return doc


def environment_tags(doc: Mapping[str, Any]) -> dict[str, str]:
    """The run tags that go with ``doc``: image, digest, git state (also as MLflow's tags)."""
    tags = {env.TAG_ENVIRONMENT: env.ENVIRONMENT_DIR}
    image = doc.get("image") or {}
    if image.get("reference"):
        tags[env.TAG_IMAGE] = image["reference"]
    if image.get("digest"):
        tags[env.TAG_IMAGE_DIGEST] = image["digest"]
    git = doc.get("git") or {}
    if git.get("commit"):
        tags[env.TAG_GIT_COMMIT] = git["commit"]
        tags[env.MLFLOW_GIT_COMMIT] = git["commit"]
        tags[env.MLFLOW_GIT_DIRTY] = "true" if git.get("dirty") else "false"
        if git.get("branch"):
            tags[env.MLFLOW_GIT_BRANCH] = git["branch"]
        if git.get("remote_url"):
            tags[env.MLFLOW_GIT_REPO_URL] = git["remote_url"]
    return tags
