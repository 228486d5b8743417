"""IPython extension loaded into every kernel by the IPython startup file shipped with the package
(``etc/ipython/startup/50-mlteams-kernel-hook.py``): automatic MLflow tracking for team notebooks.

Nothing happens at kernel start beyond installing an import watcher: MLflow is imported only
when a supported ML library is. Then the tracking server is probed once with a short timeout;
if it answers, MLflow autologging is switched on, otherwise the kernel shows one warning and
keeps working untracked. Runs left open across cells are reported and can be ended with
``%mlteams_end_run``; re-running the cell that opened a run ends that run first.

When the team has datasets, a second import watcher waits for pandas and fsspec; at their import
it loads the catalog and wraps their readers, and reads of catalog datasets become dataset
inputs of the kernel's runs (see ``lineage_runs``).

A third watcher waits for MLflow itself: from its import on, every run created in the kernel
(by autologging, ``mlflow.start_run`` or a client) gets the environment that produced it, once,
at its creation: installed packages, image, git state (see ``environment_capture``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import Configurable

from server_ext import contract as env
from server_ext.kernel.import_watch import ImportWatcher

if TYPE_CHECKING:
    from server_ext.kernel.environment_capture import EnvironmentRecorder
    from server_ext.kernel.lineage_runs import LineageRecorder
    from server_ext.kernel.read_hooks import ReadHooks

SUPPORTED_LIBRARIES = (
    "sklearn",
    "torch",
    "lightning",
    "pytorch_lightning",
    "xgboost",
    "lightgbm",
    "tensorflow",
    "keras",
    "transformers",
)

DATASET_READER_MODULES = ("pandas", "fsspec")
"""Top-level modules whose readers report dataset reads (see ``read_hooks.READERS``)."""


def tracking_configured(environ: Mapping[str, str]) -> bool:
    return environ.get(env.TRACKING_ENABLED) == "1" and bool(environ.get(env.TRACKING_URI))


class KernelTracking(Configurable):
    """Automatic MLflow tracking in a team notebook kernel."""

    enabled = Bool(
        True,
        config=True,
        help="""Track notebooks automatically (when the server has a tracking URI from the
        hub). Off: the kernel is left alone.""",
    )
    libraries = List(
        Unicode(),
        default_value=list(SUPPORTED_LIBRARIES),
        config=True,
        help="Top-level modules whose first import switches MLflow autologging on.",
    )
    probe_timeout = Float(
        3.0,
        config=True,
        help="Seconds to wait for the tracking server's health check before autologging.",
    )
    log_models = Bool(
        True, config=True, help="Let autologging store trained models as run artifacts."
    )
    log_datasets = Bool(
        True, config=True, help="Let autologging record training data as run dataset inputs."
    )
    record_dataset_reads = Bool(
        True,
        config=True,
        help="""Record reads of the team's catalog datasets (pandas readers, fsspec.open) as
        dataset inputs of the runs open at the read or created after it in the kernel.""",
    )
    dataset_hash_max_bytes = Int(
        128 * 1024 * 1024,
        config=True,
        help="""Local dataset files up to this size get a sha256 of their content as digest;
        larger ones a fingerprint of size and modification time.""",
    )
    record_environment = Bool(
        True,
        config=True,
        help="""Record on each run the environment that produced it: the artifacts
        `environment/requirements.txt` (installed distributions) and
        `environment/environment.json` (Python, platform, image, git state, notebook), and the
        image and git tags.""",
    )
    git_timeout = Float(
        2.0,
        config=True,
        help="Seconds each `git` command may take when recording a run's git state.",
    )
    system_metrics_on_gpu = Bool(
        True,
        config=True,
        help="Log GPU system metrics on GPU profiles when nvidia-ml-py (pynvml) is installed.",
    )

    def __init__(self, shell: Any = None, environ: Mapping[str, str] | None = None, **kw: Any):
        super().__init__(**kw)
        self.shell = shell
        self.environ = os.environ if environ is None else environ
        self.state = "waiting"
        self.warning: str | None = None
        self.watcher = ImportWatcher(self.libraries, self.on_library_imported)
        self._opened_by_cell: dict[str, str | None] = {}
        self._reported: set[str] = set()
        self._run_before: str | None = None
        self.lineage: LineageRecorder | None = None
        self.read_hooks: ReadHooks | None = None
        self.read_watcher: ImportWatcher | None = None
        self.environment: EnvironmentRecorder | None = None
        self.mlflow_watcher: ImportWatcher | None = None
        self._undo_environment: Callable[[], None] | None = None

    # -- activation ---------------------------------------------------------------------------

    def install(self) -> None:
        for name, default in (
            (env.HTTP_TIMEOUT, env.DEFAULT_HTTP_TIMEOUT),
            (env.HTTP_MAX_RETRIES, env.DEFAULT_HTTP_MAX_RETRIES),
            (env.OBJECT_STORE_CLIENT, env.DEFAULT_OBJECT_STORE_CLIENT),
        ):
            os.environ.setdefault(name, default)
        self._install_lineage()
        self._install_environment()
        self.watcher.install()
        if self.watcher.already_imported():
            self.on_library_imported(self.watcher.already_imported()[0])
        if self.shell is not None:
            self.shell.events.register("pre_run_cell", self.pre_run_cell)
            self.shell.events.register("post_run_cell", self.post_run_cell)
            self.shell.register_magic_function(self.end_run_magic, "line", "mlteams_end_run")

    def _install_environment(self) -> None:
        """Watch for MLflow's import; its runs get their environment from then on."""
        if not self.record_environment:
            return
        self.mlflow_watcher = ImportWatcher(("mlflow",), self._on_mlflow_imported)
        self.mlflow_watcher.install()
        if self.mlflow_watcher.already_imported():
            self._on_mlflow_imported("mlflow")

    def _on_mlflow_imported(self, name: str) -> None:
        if self.mlflow_watcher is not None:
            self.mlflow_watcher.uninstall()
        if self.environment is not None:
            return
        from server_ext.kernel.environment_capture import EnvironmentRecorder
        from server_ext.kernel.run_hooks import on_run_created

        self.environment = EnvironmentRecorder(
            environ=self.environ,
            home=self.environ.get("HOME") or os.path.expanduser("~"),
            git_timeout=self.git_timeout,
        )
        self._undo_environment = on_run_created(self.environment.record)

    def uninstall_environment(self) -> None:
        if self.mlflow_watcher is not None:
            self.mlflow_watcher.uninstall()
        if self._undo_environment is not None:
            self._undo_environment()
            self._undo_environment = None

    def _install_lineage(self) -> None:
        """Watch for pandas and fsspec when the team has datasets (nothing else at start)."""
        catalog = self.environ.get(env.DATASETS, "").strip()
        if not self.record_dataset_reads or catalog in ("", "[]"):
            return
        self.read_watcher = ImportWatcher(DATASET_READER_MODULES, self._on_reader_imported)
        self.read_watcher.install()
        for name in self.read_watcher.already_imported():
            self._on_reader_imported(name)

    def _on_reader_imported(self, name: str) -> None:
        hooks = self.read_hooks or self._start_lineage()
        if hooks is not None:
            hooks.on_import(name)

    def _start_lineage(self) -> ReadHooks | None:
        """Load the catalog and the lineage parts, at the first import of a reader module."""
        from server_ext.contract import CatalogError, catalog_from_env
        from server_ext.kernel.lineage_runs import LineageRecorder
        from server_ext.kernel.read_hooks import ReadHooks

        try:
            catalog = catalog_from_env(self.environ)
        except CatalogError:
            catalog = []
        if not catalog:
            if self.read_watcher is not None:
                self.read_watcher.uninstall()
            return None
        self.lineage = LineageRecorder(
            catalog,
            state=lambda: self.state,
            active_run_id=self._active_run_id,
            warn=lambda message: hooks.warn(message),
            home=self.environ.get("HOME") or os.path.expanduser("~"),
            hash_max_bytes=self.dataset_hash_max_bytes,
        )
        self.read_hooks = hooks = ReadHooks(self.lineage.report)
        if self.state == "active":
            self._activate_lineage()
        return hooks

    def _activate_lineage(self) -> None:
        if self.lineage is not None and self.read_hooks is not None:
            try:
                self.lineage.activate()
            except Exception as exc:
                self.read_hooks.warn(f"dataset lineage is not recorded in this kernel ({exc!r})")

    def uninstall_lineage(self) -> None:
        if self.read_watcher is not None:
            self.read_watcher.uninstall()
        if self.read_hooks is not None:
            self.read_hooks.unpatch()
        if self.lineage is not None:
            self.lineage.deactivate()

    def on_library_imported(self, name: str) -> None:
        if self.state != "waiting":
            return
        self.state = "activating"
        self.watcher.uninstall()
        from server_ext.kernel.reachability import probe

        uri = self.environ.get(env.TRACKING_URI, "")
        problem = probe(uri, self.probe_timeout)
        if problem:
            self.state = "unreachable"
            self.warn(
                f"MLflow tracking at {uri} is unreachable: {problem}. This kernel runs "
                "untracked; restart it to retry."
            )
            return
        try:
            self._autolog()
        except Exception as exc:
            self.state = "failed"
            self.warn(f"MLflow autologging could not start ({exc}); this kernel runs untracked.")
            return
        self.state = "active"
        self._activate_lineage()

    def _autolog(self) -> None:
        import mlflow

        mlflow.autolog(
            log_models=self.log_models,
            log_datasets=self.log_datasets,
            log_input_examples=False,
            silent=True,
        )
        gpus = self.environ.get(env.GPUS, "0")
        if self.system_metrics_on_gpu and gpus not in ("", "0"):
            import importlib.util

            if importlib.util.find_spec("pynvml") is not None:
                mlflow.enable_system_metrics_logging()

    def warn(self, message: str) -> None:
        if self.warning is None:
            self.warning = message
            print(f"mlteams warning: {message}", file=sys.stderr, flush=True)

    # -- runs across cells --------------------------------------------------------------------

    @staticmethod
    def _active_run_id() -> str | None:
        mlflow = sys.modules.get("mlflow")
        if mlflow is None:
            return None
        try:
            run = mlflow.active_run()
        except Exception:
            return None
        return run.info.run_id if run else None

    def pre_run_cell(self, info: Any = None) -> None:
        run_id = self._active_run_id()
        cell_id = getattr(info, "cell_id", None)
        if run_id and cell_id and self._opened_by_cell.get(run_id) == cell_id:
            self._end_run("KILLED")
            print(
                f"mlteams: ended MLflow run {run_id}, left open by the previous execution of "
                "this cell, before running it again.",
                file=sys.stderr,
            )
            run_id = None
        self._run_before = run_id

    def post_run_cell(self, result: Any = None) -> None:
        run_id = self._active_run_id()
        if not run_id:
            return
        if run_id != self._run_before:
            cell_id = getattr(getattr(result, "info", None), "cell_id", None)
            self._opened_by_cell[run_id] = cell_id
        if run_id not in self._reported:
            self._reported.add(run_id)
            print(
                f"mlteams: MLflow run {run_id} is still open after this cell; later cells log "
                "into it. End it with %mlteams_end_run.",
                file=sys.stderr,
            )

    def _end_run(self, status: str = "FINISHED") -> str | None:
        run_id = self._active_run_id()
        if run_id:
            try:
                sys.modules["mlflow"].end_run(status=status)
            except Exception as exc:
                self.warn(f"could not end MLflow run {run_id}: {exc}")
        return run_id

    def end_run_magic(self, line: str = "") -> None:
        status = line.strip().upper() or "FINISHED"
        run_id = self._end_run(status)
        print(f"mlteams: ended MLflow run {run_id}." if run_id else "mlteams: no open MLflow run.")


_tracker: KernelTracking | None = None


def load_ipython_extension(ipython: Any) -> None:
    global _tracker
    if _tracker is not None or not tracking_configured(os.environ):
        return
    tracker = KernelTracking(shell=ipython, parent=ipython)
    if not tracker.enabled:
        return
    _tracker = tracker
    tracker.install()


def unload_ipython_extension(ipython: Any) -> None:
    global _tracker
    if _tracker is not None:
        _tracker.watcher.uninstall()
        _tracker.uninstall_lineage()
        _tracker.uninstall_environment()
        _tracker = None
