"""Reads of the team's catalog datasets become dataset inputs of the kernel's MLflow runs.

``LineageRecorder.report`` receives every read the reader wrappers see. A read inside a catalog
dataset is kept with its digest, taken at read time. Once tracking is active, each kept read is
logged as a dataset input (name, source URI, digest; context ``training``) on the run open when
it happens and on every run created afterwards in the kernel, since the data read stays in
memory: notebooks usually read in one cell and fit, which opens and closes an autolog run, in a
later one. Each run gets each read once. MLflow is imported only by the functions that log,
which run after tracking is active.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from server_ext.contract import CatalogEntry
from server_ext.kernel.lineage import (
    LOCAL,
    DatasetRead,
    Digest,
    Location,
    dataset_read,
    location_of,
    match,
    source_json,
    source_type,
)

MAX_PENDING = 100
"""Reads kept for later runs; the oldest are dropped beyond this."""

NOTING_STATES = ("waiting", "activating", "active")
"""Tracking states in which reads are kept (tracking may still become active)."""

LogReads = Callable[[Any, str, list[DatasetRead]], None]
HookRuns = Callable[[Callable[[Any, str], None]], Callable[[], None]]


def dataset_inputs(reads: Iterable[DatasetRead]) -> list[Any]:
    """MLflow ``DatasetInput`` entities for ``reads``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [
        DatasetInput(
            dataset=Dataset(
                name=read.name,
                digest=read.digest,
                source_type=source_type(read.source_uri),
                source=source_json(read.source_uri),
            ),
            tags=[InputTag(key=k, value=v) for k, v in read.input_tags().items()],
        )
        for read in reads
    ]


def log_reads(client: Any, run_id: str, reads: list[DatasetRead]) -> None:
    """Log ``reads`` on run ``run_id`` with ``client`` (a new ``MlflowClient`` when ``None``)."""
    if client is None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
    client.log_inputs(run_id, datasets=dataset_inputs(reads))


def hook_run_creation(callback: Callable[[Any, str], None]) -> Callable[[], None]:
    """Call ``callback(client, run_id)`` after each run's creation (see ``run_hooks``)."""
    from server_ext.kernel.run_hooks import on_run_created

    return on_run_created(callback)


class LineageRecorder:
    """Keeps the kernel's catalog dataset reads and gives them to its runs."""

    def __init__(
        self,
        catalog: list[CatalogEntry],
        *,
        state: Callable[[], str],
        active_run_id: Callable[[], str | None],
        warn: Callable[[str], None],
        home: str,
        hash_max_bytes: int,
        cwd: Callable[[], str] = os.getcwd,
        resolve: Callable[[str], str] = os.path.realpath,
        log: LogReads = log_reads,
        hook: HookRuns = hook_run_creation,
    ) -> None:
        self.catalog = catalog
        self.state = state
        self.active_run_id = active_run_id
        self.warn = warn
        self.home = home
        self.hash_max_bytes = hash_max_bytes
        self.cwd = cwd
        self.resolve = resolve
        self._log = log
        self._hook = hook
        self._undo: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self.pending: dict[tuple[str, str, str], DatasetRead] = {}
        self.given: set[tuple[str, tuple[str, str, str]]] = set()

    def report(
        self, reader: str, target: object, storage_options: Mapping[str, Any] | None
    ) -> None:
        """Keep a read if it is of a catalog dataset; log it on the open run if tracking is on."""
        if self.state() not in NOTING_STATES:
            return
        cwd = self.cwd()
        location = location_of(target, home=self.home, cwd=cwd)
        if location is None:
            return
        found = match(location, self.catalog, home=self.home, cwd=cwd, resolve=self.resolve)
        if found is None:
            return
        read = dataset_read(found, self.digest(found.location, storage_options), reader)
        with self._lock:
            self.pending.pop(read.key, None)
            self.pending[read.key] = read
            while len(self.pending) > MAX_PENDING:
                self.pending.pop(next(iter(self.pending)))
        if self.state() == "active":
            run_id = self.active_run_id()
            if run_id:
                self.give(None, run_id)

    def digest(
        self, location: Location, storage_options: Mapping[str, Any] | None
    ) -> Digest | None:
        """The digest of what was read; ``None`` when it cannot be taken."""
        from server_ext.kernel import lineage_digest

        try:
            if location.kind == LOCAL:
                return lineage_digest.local_digest(
                    location.path, hash_max_bytes=self.hash_max_bytes
                )
            return lineage_digest.remote_digest(location.path, storage_options)
        except Exception:
            return None

    def activate(self) -> None:
        """Start giving reads to runs: the open one now, and every run created from now on."""
        if self._undo is None:
            self._undo = self._hook(self.give)
        run_id = self.active_run_id()
        if run_id:
            self.give(None, run_id)

    def deactivate(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None

    def give(self, client: Any, run_id: str) -> None:
        """Log the kept reads that run ``run_id`` does not have yet; one warning on failure."""
        with self._lock:
            reads = [r for k, r in self.pending.items() if (run_id, k) not in self.given]
            self.given.update((run_id, r.key) for r in reads)
        if not reads:
            return
        try:
            self._log(client, run_id, reads)
        except Exception as exc:
            with self._lock:
                self.given.difference_update((run_id, r.key) for r in reads)
            self.warn(f"dataset lineage could not be logged on MLflow run {run_id}: {exc}")
