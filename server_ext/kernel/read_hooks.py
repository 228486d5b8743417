"""Wrappers around pandas readers and ``fsspec`` openers that report what a notebook reads.

``ReadHooks.on_import`` is called when pandas or fsspec has been imported. It replaces the
module's reader functions (``pandas.read_csv``, ..., ``fsspec.open``) with wrappers that call
the original, then report the path or URI it got, the reader's name and its storage options.
A wrapper returns the original's result and raises only the original's errors: a failing report
is swallowed, with one warning on stderr for the whole kernel. A read made inside another
wrapped read (pandas opening an ``s3://`` file through ``fsspec.open``) is reported once, by
the outer reader.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

PANDAS_READERS = (
    "read_csv",
    "read_table",
    "read_parquet",
    "read_json",
    "read_feather",
    "read_orc",
)
FSSPEC_OPENERS = ("open", "open_files")

TARGET_KEYWORDS = ("filepath_or_buffer", "path", "path_or_buf", "urlpath")
"""Names of the first parameter of the wrapped functions."""

FSSPEC_OPTIONS_EXCLUDED = frozenset(
    {
        "mode",
        "compression",
        "encoding",
        "errors",
        "protocol",
        "newline",
        "expand",
        "name_function",
        "num",
        "auto_mkdir",
    }
)

Report = Callable[[str, object, "Mapping[str, Any] | None"], None]
"""Called with the reader's name (``pandas.read_csv``), its target and its storage options."""

Arguments = Callable[[tuple[Any, ...], Mapping[str, Any]], Any]

_WRAPPED = "__mlteams_read_hook__"


def target_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> object:
    if args:
        return args[0]
    return next((kwargs[k] for k in TARGET_KEYWORDS if k in kwargs), None)


def pandas_options(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return kwargs.get("storage_options")


def fsspec_options(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return {k: v for k, v in kwargs.items() if k not in FSSPEC_OPTIONS_EXCLUDED}


def always(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    return True


def fsspec_reads(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Whether an ``fsspec.open`` call opens for reading only."""
    mode = args[1] if len(args) > 1 else kwargs.get("mode", "rb")
    return isinstance(mode, str) and "r" in mode and "+" not in mode


@dataclass(frozen=True)
class Readers:
    """Functions of one module to wrap, how to find their storage options, which calls read."""

    names: tuple[str, ...]
    options: Arguments
    reads: Arguments = always


READERS = {
    "pandas": Readers(PANDAS_READERS, pandas_options),
    "fsspec": Readers(FSSPEC_OPENERS, fsspec_options, fsspec_reads),
}


class ReadHooks:
    """Installs and removes the reader wrappers; reports reads to ``report``."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.warned = False
        self._originals: list[tuple[ModuleType, str, Any]] = []
        self._depth = threading.local()

    def on_import(self, name: str) -> None:
        """Wrap the readers of module ``name`` (a key of ``READERS``), if it is imported."""
        module = sys.modules.get(name)
        readers = READERS.get(name)
        if module is None or readers is None:
            return
        for attr in readers.names:
            func = getattr(module, attr, None)
            if func is None or getattr(func, _WRAPPED, False):
                continue
            self._originals.append((module, attr, func))
            setattr(module, attr, self.wrap(func, f"{name}.{attr}", readers))

    def unpatch(self) -> None:
        while self._originals:
            module, name, func = self._originals.pop()
            if getattr(getattr(module, name, None), _WRAPPED, False):
                setattr(module, name, func)

    def wrap(self, func: Callable[..., Any], reader: str, readers: Readers) -> Callable[..., Any]:
        """``func`` reporting its target after each successful call made outside another."""

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "value", 0)
            self._depth.value = depth + 1
            try:
                result = func(*args, **kwargs)
            finally:
                self._depth.value = depth
            if depth == 0:
                self._report(reader, readers, args, kwargs)
            return result

        setattr(wrapper, _WRAPPED, True)
        return wrapper

    def _report(
        self, reader: str, readers: Readers, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        try:
            if not readers.reads(args, kwargs):
                return
            storage = readers.options(args, kwargs)
            target = target_of(args, kwargs)
            for one in target if isinstance(target, (list, tuple)) else [target]:
                self.report(reader, one, storage)
        except Exception as exc:
            self.warn(f"dataset lineage is not recorded in this kernel ({exc!r})")

    def warn(self, message: str) -> None:
        """Print ``message`` as a warning, the first time only."""
        if not self.warned:
            self.warned = True
            print(f"mlteams warning: {message}", file=sys.stderr, flush=True)
