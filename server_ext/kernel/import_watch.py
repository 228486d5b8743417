"""Call back when a watched top-level package has finished importing, without importing it.

A ``sys.meta_path`` finder that lets the normal finders locate the package and wraps its loader
so that the callback runs right after the module's code. It costs nothing until one of the
watched names is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable, Iterable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


class _NotifyingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, on_loaded: Callable[[str], None]) -> None:
        self._loader = loader
        self._on_loaded = on_loaded

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._on_loaded(module.__name__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class ImportWatcher(importlib.abc.MetaPathFinder):
    """Finder that reports the first import of each name in ``names``."""

    def __init__(self, names: Iterable[str], callback: Callable[[str], None]) -> None:
        self.names = frozenset(names)
        self.callback = callback
        self._busy = False

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _NotifyingLoader(spec.loader, self._notify)
        return spec

    def _notify(self, name: str) -> None:
        try:
            self.callback(name)
        except Exception as exc:  # a tracking failure must never break the user's import
            print(f"mlteams: tracking hook failed after importing {name}: {exc}", file=sys.stderr)

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        while self in sys.meta_path:
            sys.meta_path.remove(self)

    def already_imported(self) -> list[str]:
        return sorted(n for n in self.names if n in sys.modules)
