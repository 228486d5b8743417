"""One spawn through TeamKubeSpawner and the installed KubeSpawner's own ``_start()``.

The Kubernetes API is in memory (``fake_kube``); everything else is the real code: JupyterHub's
``Spawner``, KubeSpawner's call order, the policy. Counts per spawn are taken with spies.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes_asyncio.client.rest import ApiException
from tornado import web

from hub_ext.spawner import TeamKubeSpawner, refusals, team_spawner
from tests.unit.spawner.fake_kube import FakeKube, hub_config, make_spawner

pytestmark = pytest.mark.unit

VISION = ["vision-engineers"]
NLP = ["/ml/nlp"]


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    fake = FakeKube()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the spawn path validates, loads options, decides and asks for the reflector."""
    counts: Counter[str] = Counter()

    def spy(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):

            async def counted_async(*args: Any, **kwargs: Any) -> Any:
                counts[name] += 1
                return await func(*args, **kwargs)

            return counted_async

        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return func(*args, **kwargs)

        return counted

    for name in ("validate_user_options", "decide_and_reserve"):
        monkeypatch.setattr(team_spawner, name, spy(name, getattr(team_spawner, name)))
    for name in ("load_user_options", "_start_watching_pods"):
        monkeypatch.setattr(TeamKubeSpawner, name, spy(name, getattr(TeamKubeSpawner, name)))
    return counts


def env_of(pod: Any) -> dict[str, str]:
    return {e.name: e.value for e in pod.spec.containers[0].env}


def held_gpus(spawner: TeamKubeSpawner, team: str, user: str) -> int:
    return spawner.team_state.ledger.user_usage(team, user).gpus


async def test_a_spawn_validates_applies_and_admits_once(
    kube: FakeKube, calls: Counter[str]
) -> None:
    config = hub_config()
    ana = make_spawner(config, "ana", VISION, {"team": "vision", "profile": "pytorch-1gpu"})
    url = await ana.start()

    assert url.startswith("http://127.0.0.1:")
    assert calls["validate_user_options"] == 1
    assert calls["load_user_options"] == 1
    assert calls["decide_and_reserve"] == 1
    # the hub's first spawn starts the pod reflector before deciding; KubeSpawner's own call
    # in _start() then finds it running
    assert kube.reflector_starts["pods"] == 1
    [pod] = kube.created
    assert pod.metadata.namespace == "team-vision"
    assert pod.metadata.labels["mlteams.io/profile"] == "pytorch-1gpu"
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    assert env_of(pod)["NCCL_DEBUG"] == "WARN"
    # the reservation and the pod it became count once
    assert held_gpus(ana, "vision", "ana") == 1

    calls.clear()
    bea = make_spawner(config, "bea", VISION, {"profile": "cpu"})
    await bea.start()
    assert calls == Counter(
        validate_user_options=1, load_user_options=1, decide_and_reserve=1, _start_watching_pods=1
    )
    assert kube.reflector_starts["pods"] == 1


async def test_a_form_spawn_is_validated_once_in_the_spawn(
    kube: FakeKube, calls: Counter[str]
) -> None:
    carol = make_spawner(hub_config(), "carol", VISION + NLP)
    options = carol.run_options_from_form({"choice": ["nlp/cpu"], "_xsrf": ["token"]})
    assert options == {"team": "nlp", "profile": "cpu"}
    assert calls["validate_user_options"] == 0

    carol.user_options = options
    await carol.start()
    assert calls["validate_user_options"] == 1
    assert kube.created[0].metadata.namespace == "ml-nlp"


@pytest.mark.parametrize(
    ("options", "status", "text"),
    [
        ({"team": "nlp", "profile": "cpu"}, 403, "not a member of team"),
        ({"team": "vision", "profile": "queued-1gpu"}, 403, "not available to team vision"),
        ({"profile": "no-such"}, 400, "Unknown profile"),
        ({"profile": "cpu", "image": "evil:latest"}, 400, "Unknown spawn option"),
    ],
)
async def test_bad_options_are_refused_with_a_4xx_that_is_not_a_hub_failure(
    kube: FakeKube, calls: Counter[str], options: dict, status: int, text: str
) -> None:
    ana = make_spawner(hub_config(), "ana", VISION, options)
    ana.handler = SimpleNamespace(settings={"failure_count": 0})
    with pytest.raises(web.HTTPError) as refused:
        await ana.start()
    assert refused.value.status_code == status
    assert text in refused.value.log_message
    assert calls["validate_user_options"] == 1
    assert calls["decide_and_reserve"] == 0
    assert kube.created == []
    assert ana.team_state.ledger.reservations() == []
    # JupyterHub 5 counts every failed spawn: the refusal gave its count back beforehand
    expected = -1 if refusals.SpawnException is None else 0
    assert ana.handler.settings["failure_count"] == expected


async def test_over_quota_without_a_queue_is_refused_with_429(
    kube: FakeKube, calls: Counter[str]
) -> None:
    config = hub_config()
    for user in ("u1", "u2", "u3", "u4"):
        await make_spawner(config, user, VISION, {"profile": "pytorch-2gpu"}).start()
    calls.clear()
    ana = make_spawner(config, "ana", VISION, {"profile": "pytorch-1gpu"})
    with pytest.raises(web.HTTPError) as refused:
        await ana.start()
    assert refused.value.status_code == 429
    assert "0 of 8 GPUs free" in refused.value.log_message
    assert calls["decide_and_reserve"] == 1
    assert len(kube.created) == 4


async def test_admission_reads_pods_the_cluster_already_has(kube: FakeKube) -> None:
    kube.existing = {
        f"team-vision/jupyter-old{i}": {
            "metadata": {
                "name": f"jupyter-old{i}",
                "namespace": "team-vision",
                "labels": {"mlteams.io/team": "vision"},
                "annotations": {"mlteams.io/user": f"old{i}", "mlteams.io/server": f"old{i}/"},
            },
            "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
            "status": {"phase": "Running"},
        }
        for i in range(4)
    }
    ana = make_spawner(hub_config(), "ana", VISION, {"profile": "pytorch-1gpu"})
    with pytest.raises(web.HTTPError) as refused:
        await ana.start()
    assert refused.value.status_code == 429
    assert kube.created == []


async def test_a_queued_spawn_waits_with_its_position_and_starts_when_gpus_free_up(
    kube: FakeKube, calls: Counter[str]
) -> None:
    config = hub_config()
    bob = make_spawner(config, "bob", NLP, {"profile": "queued-4gpu"})
    await bob.start()
    assert bob.start_timeout == 60 + 1200

    calls.clear()
    carol = make_spawner(config, "carol", NLP, {"profile": "queued-1gpu"})
    spawn = carol.start()
    assert carol.start_timeout == 60 + 600
    progress = carol.progress()
    event = await asyncio.wait_for(anext(progress), 5)
    assert "queued: position 1 of 1" in event["message"]
    assert not spawn.done()
    assert len(kube.created) == 1

    await bob.stop()
    await asyncio.wait_for(spawn, 5)
    assert kube.created[-1].metadata.labels["mlteams.io/user"] == "carol"
    assert held_gpus(carol, "nlp", "carol") == 1
    assert calls["decide_and_reserve"] == 1
    assert calls["load_user_options"] == 1
    await progress.aclose()

    await carol.stop()
    carol.user_options = {"profile": "cpu"}
    await carol.start()
    assert carol.start_timeout == 60


async def test_a_cancelled_queued_spawn_leaves_the_queue_and_holds_nothing(kube: FakeKube) -> None:
    config = hub_config()
    await make_spawner(config, "bob", NLP, {"profile": "queued-4gpu"}).start()
    carol = make_spawner(config, "carol", NLP, {"profile": "queued-1gpu"})
    spawn = carol.start()
    state = carol.team_state
    progress = carol.progress()
    assert "queued" in (await asyncio.wait_for(anext(progress), 5))["message"]
    await progress.aclose()
    spawn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await spawn
    assert state.queue.position(carol.server_id) is None
    assert state.ledger.reservation(carol.server_id) is None
    assert held_gpus(carol, "nlp", "carol") == 0


async def test_resource_quota_refusal_gets_the_hubs_message_and_frees_the_reservation(
    kube: FakeKube,
) -> None:
    exceeded = ApiException(status=403, reason="Forbidden")
    exceeded.body = 'pods "jupyter-ana" is forbidden: exceeded quota: mlteams-quota'
    kube.create_errors.append(exceeded)
    ana = make_spawner(hub_config(), "ana", VISION, {"profile": "pytorch-1gpu"})
    ana.handler = SimpleNamespace(settings={})
    with pytest.raises(web.HTTPError) as refused:
        await ana.start()
    assert refused.value.status_code == 403
    assert "quota for namespace team-vision is used up" in refused.value.log_message
    assert "exceeded quota" not in refused.value.log_message
    assert ana.team_state.ledger.reservation(ana.server_id) is None


async def test_a_pod_name_conflict_keeps_the_spawns_reservation(kube: FakeKube) -> None:
    # KubeSpawner deletes the conflicting pod with stop() and creates its pod again
    kube.create_errors.append(ApiException(status=409, reason="Conflict"))
    ana = make_spawner(hub_config(), "ana", VISION, {"profile": "pytorch-1gpu"})
    await ana.start()
    assert kube.deleted == ["team-vision/jupyter-ana"]
    assert len(kube.created) == 1
    assert ana.team_state.ledger.reservation(ana.server_id) is not None

    await ana.stop()
    assert ana.team_state.ledger.reservation(ana.server_id) is None
    assert held_gpus(ana, "vision", "ana") == 0


async def test_switching_profiles_leaves_nothing_of_the_previous_one(kube: FakeKube) -> None:
    config = hub_config(
        environment={"NCCL_DEBUG": "INFO", "SITE": "hq"}, extra_labels={"site": "hq"}
    )
    first = {"team": "vision", "profile": "pytorch-1gpu"}
    carol = make_spawner(config, "carol", VISION + NLP, first)
    await carol.start()
    assert env_of(kube.created[-1])["NCCL_DEBUG"] == "WARN"
    await carol.stop()

    carol.user_options = {"team": "nlp", "profile": "cpu"}
    await carol.start()
    pod = kube.created[-1]
    env = env_of(pod)
    assert env["NCCL_DEBUG"] == "INFO"
    assert env["SITE"] == "hq"
    assert env["MLTEAMS_TEAM"] == "nlp"
    assert pod.metadata.labels["site"] == "hq"
    assert pod.metadata.labels["mlteams.io/team"] == "nlp"
    assert "nvidia.com/gpu" not in (pod.spec.containers[0].resources.limits or {})


async def test_the_form_lists_the_users_teams_from_the_packaged_template(kube: FakeKube) -> None:
    carol = make_spawner(hub_config(), "carol", VISION + NLP)
    html = await carol.get_options_form()
    assert 'data-team="vision"' in html and 'data-team="nlp"' in html
    assert 'id="mlteams-nlp-queued-1gpu"' in html
    assert "team nlp: 4 of 4 GPUs free" in html

    nobody = make_spawner(hub_config(), "dave", ["staff"])
    page = await nobody.get_options_form()
    assert "mlteams-no-team" in page and 'type="radio"' not in page


async def test_an_admin_template_in_additional_paths_replaces_the_form(
    kube: FakeKube, tmp_path: Path
) -> None:
    (tmp_path / "mlteams_form.html").write_text(
        "{% for s in sections %}<p>{{ s.team.display_name }}</p>{% endfor %}{{ selected }}"
        "{{ no_team_message or '' }}"
    )
    config = hub_config(additional_profile_form_template_paths=[str(tmp_path)])
    config.MLTeams.teams["vision"]["display_name"] = "<Vision & co>"
    carol = make_spawner(config, "carol", VISION)
    assert await carol.get_options_form() == "<p>&lt;Vision &amp; co&gt;</p>vision/cpu"


async def test_profile_form_template_text_replaces_the_form(kube: FakeKube) -> None:
    config = hub_config(profile_form_template="<p>{{ no_team_message }}</p>")
    nobody = make_spawner(config, "dave", ["staff"])
    page = await nobody.get_options_form()
    assert page.startswith("<p>You are not a member of any ML team")
    assert "&#39;staff&#39;" in page
