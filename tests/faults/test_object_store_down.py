"""The object store (MinIO) stopped while a member works in a notebook, on the rig.

The side panel's dataset list and snippets come from the team's catalog in the server's
environment, so they still answer, quickly, with the same catalog and snippet. The snippet run in
the member's real kernel fails within a bounded time with an error naming the store it cannot
reach (no hang, the kernel stays usable), and the same cell reads the data again once the store
is back on the same port. A store frozen in place (the process suspended: connections open,
nothing answers) fails the read within the kernel's object-store timeouts, not the clients'
defaults of many minutes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from devenv.hub import LocalHub
from tests.integration.remote_kernel import CellResult, RemoteNotebook
from tests.integration.team_data import TeamData
from tests.integration.team_hub_helpers import wait_server_sync
from tests.integration.test_promotion_on_rig import server_call

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

USER = "v-03"
READ_BOUND_SECONDS = 60
"""How long a read of a stopped store may take to fail in the kernel."""
FROZEN_BOUND_SECONDS = 150
"""How long a read of a store that accepts connections but never answers may take to fail (the
kernel's s3 timeouts, ``server_ext.contract.DEFAULT_OBJECT_STORE_CLIENT``: about 100 s)."""
ROWS = 'print("rows", len(df))'


@pytest.fixture
async def notebook(team_hub: LocalHub) -> AsyncIterator[RemoteNotebook]:
    """A running kernel in ``USER``'s server of team vision."""
    status, body = team_hub.call(
        "POST", f"/users/{USER}/server", {"team": "vision", "profile": "cpu"}
    )
    assert status in (201, 202), body
    try:
        wait_server_sync(team_hub, USER, ready=True)
        opened = RemoteNotebook(team_hub, USER, "faults/read.ipynb")
        await opened.save("print('ready')")
        await opened.open_session()
        try:
            yield opened
        finally:
            await opened.close_session()
    finally:
        team_hub.call("DELETE", f"/users/{USER}/server")
        wait_server_sync(team_hub, USER, ready=False)


async def run(notebook: RemoteNotebook, *cells: str) -> tuple[list[CellResult], float]:
    """The cells' results and the seconds they took."""
    await notebook.save(*cells)
    started = time.monotonic()
    results = await notebook.run(timeout=240)
    assert len(results) == len(cells), results  # a cell that failed stops the ones after it
    return results, time.monotonic() - started


async def test_a_stopped_object_store_fails_the_read_quickly_and_clearly(
    team_hub: LocalHub, team_data: TeamData, notebook: RemoteNotebook
) -> None:
    status, dataset = server_call(team_hub, USER, "GET", "datasets/iris")
    assert status == 200, dataset
    snippet = str(dataset["snippet"])
    [read, rows], _ = await run(notebook, snippet, ROWS)
    assert read.status == "ok" and rows.stdout.startswith("rows "), read.error
    counted = rows.stdout

    team_data.store.stop()
    try:
        # the panel's list and snippet do not need the store
        started = time.monotonic()
        status, listed = server_call(team_hub, USER, "GET", "datasets")
        assert status == 200, listed
        assert "iris" in {d["name"] for d in listed["datasets"]}
        status, again = server_call(team_hub, USER, "GET", "datasets/iris")
        assert status == 200 and again["snippet"] == snippet, again
        assert time.monotonic() - started < 10

        # the read fails in bounded time, naming the unreachable store
        [failed], took = await run(notebook, snippet)
        assert failed.status == "error", failed
        assert "Could not connect to the endpoint URL" in failed.error, failed.error
        assert team_data.store.endpoint_url in failed.error, failed.error
        assert took < READ_BOUND_SECONDS, took
        [alive], _ = await run(notebook, "print('still here')")
        assert alive.stdout.strip() == "still here", alive
    finally:
        team_data.store.start()

    [read, rows], _ = await run(notebook, snippet, ROWS)
    assert (read.status, rows.stdout) == ("ok", counted), read.error

    # frozen: the process suspended, so connections are accepted and never answered
    assert team_data.store.child is not None
    pid = team_data.store.child.popen.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        [frozen], took = await run(notebook, snippet)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert frozen.status == "error", frozen
    assert "timeout" in frozen.error.lower(), frozen.error
    assert took < FROZEN_BOUND_SECONDS, took
    [read, rows], _ = await run(notebook, snippet, ROWS)
    assert (read.status, rows.stdout) == ("ok", counted), read.error
