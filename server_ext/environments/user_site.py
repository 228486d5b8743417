"""Packages a user installs: the user base (``PYTHONUSERBASE``, by default ``~/.local`` on the
home volume), what is installed there, and what a reset removes.

The notebook image's pip installs into the user base by default (``[install] user = true`` in
the pip configuration at the interpreter's prefix), so ``pip install x`` and ``%pip install x``
land on the home volume and survive restarts while the image's site-packages stay as built.
Python puts the user site before the image's site-packages, but only when the folder exists when
the interpreter starts: the server extension creates it at start, so every kernel has it.
"""

from __future__ import annotations

import os
import shutil
import site
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from server_ext import contract

RESTART_NOTE = "restart your kernels: running kernels keep the packages they imported"


@dataclass(frozen=True)
class UserScheme:
    """Where pip's user installs go for this interpreter."""

    base: Path
    site_packages: Path
    scripts: Path


def default_user_base(environ: Mapping[str, str]) -> str:
    """The user base as Python computes it on Linux for the environment ``environ``:
    ``PYTHONUSERBASE``, else ``$HOME/.local``. Read from the environment at each call (the
    interpreter's own value is fixed at its start)."""
    home = environ.get("HOME") or os.path.expanduser("~")
    return environ.get("PYTHONUSERBASE") or os.path.join(home, ".local")


def user_scheme(base: str | os.PathLike[str] | None = None) -> UserScheme:
    """The user scheme for ``base`` (default: the user base of the current environment)."""
    root = str(base) if base is not None else default_user_base(os.environ)
    scheme = f"{os.name}_user"
    paths = sysconfig.get_paths(scheme, vars={"userbase": root})
    return UserScheme(Path(root), Path(paths["purelib"]), Path(paths["scripts"]))


def user_site_enabled() -> bool:
    """Whether this interpreter adds the user site to ``sys.path`` (not inside a virtualenv
    without system site packages, nor with ``python -s`` or ``PYTHONNOUSERSITE``)."""
    return bool(site.ENABLE_USER_SITE)


def ensure_user_site(scheme: UserScheme) -> bool:
    """Create the user site folder so that every interpreter started from now on puts it on
    ``sys.path``; True when it was created."""
    if scheme.site_packages.is_dir():
        return False
    scheme.site_packages.mkdir(parents=True, exist_ok=True)
    return True


def prepare_user_site() -> UserScheme | None:
    """At server start: make sure the user site exists, so kernels started from now on import
    what the user installs; None when this interpreter does not use a user site or the folder
    cannot be created (a read-only home: pip then says why when the user installs)."""
    if not user_site_enabled():
        return None
    scheme = user_scheme()
    try:
        ensure_user_site(scheme)
    except OSError:
        return None
    return scheme


def home_persistent(environ: Mapping[str, str]) -> bool | None:
    """What the hub says about the home volume: persistent, not, or unknown (None)."""
    value = environ.get(contract.HOME_PERSISTENT, "").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    return None


@dataclass(frozen=True)
class Installed:
    """A distribution installed in the user site, with the files its RECORD lists."""

    name: str
    version: str
    files: tuple[Path, ...] = ()


def installed(scheme: UserScheme) -> list[Installed]:
    """The distributions in the user site, sorted by name."""
    if not scheme.site_packages.is_dir():
        return []
    found: dict[str, Installed] = {}
    for dist in metadata.distributions(path=[str(scheme.site_packages)]):
        name = dist.metadata["Name"] or ""
        if not name or name.lower() in found:
            continue
        files = tuple(Path(os.path.normpath(str(dist.locate_file(f)))) for f in (dist.files or ()))
        found[name.lower()] = Installed(name=name, version=dist.version or "", files=files)
    return sorted(found.values(), key=lambda d: d.name.lower())


@dataclass(frozen=True)
class ResetPlan:
    """What a reset removes: every entry of the user site and the console scripts that pip
    put in the user base's ``bin`` for those packages (other files there are kept)."""

    packages: tuple[Installed, ...]
    paths: tuple[Path, ...]

    def describe(self) -> dict[str, object]:
        return {
            "packages": [{"name": p.name, "version": p.version} for p in self.packages],
            "paths": [str(p) for p in self.paths],
        }


def _inside(path: Path, folder: Path) -> bool:
    return os.path.normpath(path).startswith(os.path.normpath(folder) + os.sep)


def reset_plan(scheme: UserScheme) -> ResetPlan:
    """The reset of ``scheme``'s user site, nothing outside the user base."""
    packages = tuple(installed(scheme))
    entries: list[Path] = []
    if scheme.site_packages.is_dir():
        entries = sorted(scheme.site_packages.iterdir())
    scripts = sorted(
        {
            f
            for p in packages
            for f in p.files
            if f.parent == scheme.scripts and (f.is_file() or f.is_symlink())
        }
    )
    paths = [p for p in [*entries, *scripts] if _inside(p, scheme.base)]
    return ResetPlan(packages=packages, paths=tuple(paths))


def apply_reset(plan: ResetPlan, scheme: UserScheme) -> list[Path]:
    """Remove what ``plan`` lists (links themselves, never what they point to); the removed
    paths. Refuses any path outside the user base."""
    removed = []
    for path in plan.paths:
        if not _inside(path, scheme.base):
            raise ValueError(f"refusing to remove {path}: it is outside {scheme.base}")
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(path)
    return removed
