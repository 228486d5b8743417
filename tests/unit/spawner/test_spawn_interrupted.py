"""A spawn the hub was in the middle of when it stopped, and a spawn while the cluster's API is
unreachable: each ends with a message in words, holding nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from tornado import web

from hub_ext.spawner import team_spawner
from tests.unit.spawner.fake_kube import FakeKube, hub_config, make_spawner

pytestmark = pytest.mark.unit

NLP = ["/ml/nlp"]
VISION = ["vision-engineers"]


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    fake = FakeKube()
    fake.install(monkeypatch)
    return fake


async def test_a_queued_spawn_keeps_its_stage_in_the_state_and_a_restarted_hub_ends_it(
    kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = hub_config()
    await make_spawner(config, "bob", NLP, {"profile": "queued-4gpu"}).start()
    carol = make_spawner(config, "carol", NLP, {"profile": "queued-1gpu"})
    saved: list[dict[str, Any]] = []
    row = SimpleNamespace(state=None, server=None, name="")
    session = SimpleNamespace(commit=lambda: saved.append(dict(row.state)))
    monkeypatch.setattr(team_spawner, "object_session", lambda obj: session if obj is row else None)
    carol.orm_spawner = row
    spawn = carol.start()
    progress = carol.progress()
    assert "queued" in (await asyncio.wait_for(anext(progress), 5))["message"]
    await progress.aclose()
    assert saved and saved[-1][team_spawner.SPAWN_STAGE_KEY]["stage"] == "queued"
    assert saved[-1]["namespace"] == carol.namespace
    spawn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await spawn

    # the next hub loads that state: its poll ends the spawn with the reason
    after = make_spawner(hub_config(), "carol", NLP, {"profile": "queued-1gpu"})
    after.load_state(saved[-1])
    assert await after.poll() == 0
    failed = after._spawn_future
    assert failed is not None and failed.done()
    error = failed.exception()
    assert isinstance(error, web.HTTPError)
    message = error.jupyterhub_message  # type: ignore[attr-defined]
    assert "waiting in team nlp's queue when the hub restarted" in message
    assert "Start it again" in message
    assert after.team_state.ledger.reservation(after.server_id) is None
    assert after.get_state().get(team_spawner.SPAWN_STAGE_KEY) is None


async def test_a_finished_spawn_leaves_no_stage_in_the_state(kube: FakeKube) -> None:
    ana = make_spawner(hub_config(), "ana", VISION, {"profile": "pytorch-1gpu"})
    await ana.start()
    assert team_spawner.SPAWN_STAGE_KEY not in ana.get_state()


async def test_an_unreachable_cluster_refuses_the_spawn_with_a_503_in_words(
    kube: FakeKube,
) -> None:
    kube.create_errors.append(aiohttp.ClientConnectionError("Cannot connect to host"))  # type: ignore[arg-type]
    ana = make_spawner(hub_config(), "ana", VISION, {"profile": "pytorch-1gpu"})
    ana.handler = SimpleNamespace(settings={})
    with pytest.raises(web.HTTPError) as refused:
        await ana.start()
    assert refused.value.status_code == 503
    message = refused.value.jupyterhub_message  # type: ignore[attr-defined]
    assert message == team_spawner.CLUSTER_UNAVAILABLE
    assert "Cannot connect" not in message
    assert ana.team_state.ledger.reservation(ana.server_id) is None
