"""Fixtures of the fault tests: a platform of their own (control plane and process kubelet,
``fault_cluster``) shared by the fault modules, and hubs started on it per module
(``fault_hubs``), so that a killed hub or a stopped apiserver never reaches the session's
platform. Every process carries the session's ``MLTEAMS_RIG`` marker and is stopped afterwards,
also on failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.procs import MARKER
from tests.faults import rig

HubFactory = Callable[..., LocalHub]


@pytest.fixture(scope="package")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane and a process kubelet for the fault tests only; the kubelet leaves its
    pods running when it exits (a restarted kubelet adopts them)."""
    cluster = rig.start_cluster(tmp_path_factory.mktemp("fault-cluster"), os.environ[MARKER])
    try:
        yield cluster
    finally:
        rig.stop_cluster(cluster)


@pytest.fixture(scope="module")
def fault_hubs(
    fault_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubFactory]:
    """Start team hubs on the fault platform: ``fault_hubs(stand_in_servers=..., extra_env=...)``
    returns a started ``LocalHub`` with the fault teams (``fault_teams.yaml``); each is stopped
    when the module ends, and any child it left behind (a hub killed by a test) is ended."""
    started: list[LocalHub] = []
    leftovers: list[int] = []

    def start(
        *, stand_in_servers: bool = False, extra_env: dict[str, str] | None = None
    ) -> LocalHub:
        state: Path = tmp_path_factory.mktemp("fault-hub")
        hub = rig.new_hub(
            fault_cluster, state, stand_in_servers=stand_in_servers, extra_env=extra_env
        )
        started.append(hub)
        hub.start()
        return hub

    try:
        yield start
    finally:
        for hub in started:
            if hub.child is not None:
                leftovers.extend(rig.process_children(hub.child.pid))
            hub.stop()
        rig.end_processes(leftovers)
