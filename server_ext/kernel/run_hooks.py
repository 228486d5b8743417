"""Callbacks after each MLflow run is created in this process.

Every run, whether started by ``mlflow.start_run``, by autologging or by a client, is created by
``MlflowClient.create_run``. One wrapper is installed there for all callbacks (dataset lineage,
the run's environment) and comes off with the last one. A failing callback never reaches the
code that created the run. Imports MLflow: call only once it is imported.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

RunCallback = Callable[[Any, str], None]
"""Called as ``callback(client, run_id)`` with the client that created the run."""

_lock = threading.Lock()
_callbacks: list[RunCallback] = []
_installed: tuple[Any, Any] | None = None
"""The original ``create_run`` and its wrapper, while installed."""


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def create_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        run = original(self, *args, **kwargs)
        with _lock:
            callbacks = list(_callbacks)
        for callback in callbacks:
            try:
                callback(self, run.info.run_id)
            except Exception:  # what runs after creation must never break the run
                pass
        return run

    return create_run


def on_run_created(callback: RunCallback) -> Callable[[], None]:
    """Call ``callback(client, run_id)`` after each run's creation; returns the undo function."""
    from mlflow.tracking import MlflowClient

    global _installed
    with _lock:
        if _installed is None:
            original = MlflowClient.create_run
            wrapper = _wrap(original)
            MlflowClient.create_run = wrapper  # type: ignore[method-assign]
            _installed = (original, wrapper)
        _callbacks.append(callback)

    def undo() -> None:
        global _installed
        with _lock:
            if callback in _callbacks:
                _callbacks.remove(callback)
            if _callbacks or _installed is None:
                return
            original, wrapper = _installed
            if MlflowClient.create_run is wrapper:
                MlflowClient.create_run = original  # type: ignore[method-assign]
            _installed = None

    return undo
