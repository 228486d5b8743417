"""MLflow plugin points (registered as entry points): run tags and the notebook's experiment.

MLflow loads these when it is imported; they only read the pod's environment, so they are inert
outside a team server (``in_context`` is false).
"""

from __future__ import annotations

import dataclasses
import os
import threading

from mlflow.tracking.context.abstract_context import RunContextProvider
from mlflow.tracking.default_experiment.abstract_context import DefaultExperimentProvider

from server_ext import contract as env
from server_ext.kernel.gpu_info import detected_gpu_type
from server_ext.kernel.run_context import RunContext, context_from_env, git_commit

_lock = threading.Lock()
_experiments: dict[str, str] = {}
_commits: dict[str, str | None] = {}


def current_context() -> RunContext | None:
    path = os.environ.get(env.SESSION_NAME, "")
    if path not in _commits:
        _commits[path] = git_commit(path) if path else None
    ctx = context_from_env(os.environ, git_commit=_commits[path])
    if ctx is not None and ctx.gpus and not ctx.gpu_type:
        # the profile does not name the GPU product: ask the driver
        ctx = dataclasses.replace(ctx, gpu_type=detected_gpu_type())
    return ctx


def experiment_id_for(ctx: RunContext) -> str:
    """The id of the notebook's experiment, created (with team tags) on first use."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name = ctx.experiment_name
    with _lock:
        if name in _experiments:
            return _experiments[name]
        client = MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            tags = {
                "mlteams.team": ctx.team,
                "mlteams.user": ctx.user,
                "mlteams.notebook_path": ctx.notebook_path,
            }
            try:
                experiment_id = client.create_experiment(name, tags=tags)
            except MlflowException:
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
                experiment_id = found.experiment_id
        else:
            experiment_id = experiment.experiment_id
        _experiments[name] = experiment_id
        return experiment_id


class TeamRunContextProvider(RunContextProvider):
    """Tags every run with team, user, profile, image, GPU type, notebook path and commit."""

    def in_context(self) -> bool:
        return current_context() is not None

    def tags(self) -> dict[str, str]:
        ctx = current_context()
        return ctx.tags() if ctx else {}


class TeamExperimentProvider(DefaultExperimentProvider):
    """Puts runs without an explicit experiment into the notebook's team experiment."""

    def in_context(self) -> bool:
        return current_context() is not None

    def get_experiment_id(self) -> str:
        ctx = current_context()
        assert ctx is not None
        return experiment_id_for(ctx)
