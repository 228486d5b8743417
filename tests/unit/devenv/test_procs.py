"""Stopping a rig process ends its whole process group: a helper it started (MLflow's job
runner, for one) does not outlive it."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.procs import ProcessGroup, group_members
from tests.kube_helpers import wait_for

pytestmark = pytest.mark.unit


def test_stop_ends_what_the_child_left_in_its_group(tmp_path: Path) -> None:
    procs = ProcessGroup("unit-procs", tmp_path)
    # the shell dies of SIGTERM at once; its two sleeps stay in its group unless ended
    child = procs.start("shell", ["sh", "-c", "sleep 300 & sleep 300"])
    wait_for(lambda: len(group_members(child.pid)) == 3, timeout=10, what="shell and two sleeps")

    procs.stop_child(child)

    assert not child.alive()
    assert group_members(child.pid) == []


def test_stop_of_a_child_that_already_exited_ends_its_group_too(tmp_path: Path) -> None:
    procs = ProcessGroup("unit-procs", tmp_path)
    child = procs.start("shell", ["sh", "-c", "sleep 300 & exit 0"])
    wait_for(lambda: not child.alive(), timeout=10, what="the shell to exit")
    assert len(group_members(child.pid)) == 1

    procs.stop_all()

    assert group_members(child.pid) == []
