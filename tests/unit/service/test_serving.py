"""Serving the champion (``hub_ext.service.serving`` inside the promotion workflow), with the real
policy and sqlite store, the in-memory registry and object store of ``test_promotions``, and an
in-memory cluster that can refuse (failure injection). The same path against the real apiserver
and the rig's serving controller: tests/integration/test_serving_on_rig.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from hub_ext.policy import load_config
from hub_ext.policy.promotion import FAILED, PROMOTED
from hub_ext.service.promotions import PromotionError, Promotions, PromotionSettings
from hub_ext.service.serving import InferenceServices, Serving, ServingError
from hub_ext.service.store import Store
from tests.kserve_schema import problems
from tests.unit.service.test_promotions import (
    ALICE,
    BOB,
    CONFIG,
    GOOD,
    PERFECT,
    Clock,
    Objects,
    Registry,
    actions,
    promote,
)

pytestmark = pytest.mark.unit

NAMESPACE = "team-vision"


class Cluster:
    """InferenceServices in memory; ``refuse`` makes the next applies fail like the apiserver."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.refuse: ServingError | None = None
        self.applied: list[dict[str, Any]] = []

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        assert problems(manifest) == [], problems(manifest)
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        before = self.objects.get(key)
        generation = (before or {}).get("metadata", {}).get("generation", 0) + 1
        stored = copy.deepcopy(manifest)
        stored["metadata"]["generation"] = generation
        self.objects[key] = stored
        self.applied.append(copy.deepcopy(manifest))
        return stored

    async def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((namespace, name))
        return copy.deepcopy(found) if found else None

    async def delete(self, namespace: str, name: str) -> None:
        self.objects.pop((namespace, name), None)

    def served(self, name: str = "iris") -> dict[str, Any] | None:
        return self.objects.get((NAMESPACE, name))

    def ready(self, name: str = "iris") -> None:
        obj = self.objects[(NAMESPACE, name)]
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "url": f"http://{name}.{NAMESPACE}.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
        }


def config_with(**serving: Any) -> Any:
    raw = copy.deepcopy(CONFIG)
    raw["teams"]["vision"]["serving"] = {"enabled": True, **serving}
    return load_config(raw)


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    serving_settings = getattr(request, "param", {})
    store = Store(f"sqlite:///{tmp_path / 'service.sqlite'}")
    store.migrate()
    registry = Registry({c.run_id: c for c in (PERFECT, GOOD)})
    objects = Objects()
    cluster = Cluster()
    config = config_with(**serving_settings)

    async def evaluate(**kwargs: Any) -> list[Any]:
        run = objects.objects[kwargs["frozen"].file_uri("model.pkl")].decode()
        features = kwargs["features_csv"].decode().splitlines()
        return registry.candidates[run].predict(features[1:])  # type: ignore[attr-defined,no-any-return]

    serving = Serving(config, cluster, objects)  # type: ignore[arg-type]
    workflow = Promotions(
        config,
        store,
        registry,  # type: ignore[arg-type]
        objects,  # type: ignore[arg-type]
        evaluate,
        PromotionSettings(governed_root="s3://governed"),
        serving=serving,
        now=Clock(),
    )
    yield type(
        "World",
        (),
        {
            "workflow": workflow,
            "store": store,
            "registry": registry,
            "objects": objects,
            "cluster": cluster,
        },
    )
    store.close()


def storage_uri(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["spec"]["predictor"]["model"]["storageUri"])


async def test_a_promotion_serves_the_frozen_champion(world: Any) -> None:
    row = await promote(world, ALICE, PERFECT)
    assert row.state == PROMOTED, row.error
    served = world.cluster.served()
    assert storage_uri(served) == f"s3://governed/vision/iris/{row.id}/model"
    labels = served["metadata"]["labels"]
    assert labels["mlteams.io/version"] == "1" and labels["mlteams.io/team"] == "vision"
    assert served["metadata"]["annotations"]["mlteams.io/artifact-sha256"] == row.artifact_sha256
    state = await world.workflow.serving_state(ALICE, "vision", "iris")
    assert state["serving"]["exists"] and not state["serving"]["ready"]
    assert state["champion"] == 1 and state["manifest"]["spec"] == served["spec"]
    world.cluster.ready()
    model = await world.workflow.model(ALICE, "vision", "iris")
    assert model["serving"]["ready"] and model["serving"]["url"].startswith("http://iris.")


async def test_rollback_repoints_the_inference_service(world: Any) -> None:
    first = await promote(world, ALICE, GOOD)
    second = await promote(world, ALICE, PERFECT)
    assert storage_uri(world.cluster.served()).endswith(f"/{second.id}/model")
    await world.workflow.rollback(ALICE, "vision", "iris", None)
    served = world.cluster.served()
    assert storage_uri(served).endswith(f"/{first.id}/model")
    assert served["metadata"]["labels"]["mlteams.io/version"] == "1"
    assert served["metadata"]["generation"] == 3


async def test_a_refused_apply_undoes_the_promotion(world: Any) -> None:
    first = await promote(world, ALICE, GOOD)
    world.cluster.refuse = ServingError(422, "The cluster refused the model's InferenceService")
    row = await promote(world, ALICE, PERFECT)
    assert row.state == FAILED and "refused the model's InferenceService" in row.error
    model = world.registry.models["governed.vision.iris"]
    assert list(model["versions"]) == [first.version]
    assert model["aliases"] == {"champion": first.version}
    assert storage_uri(world.cluster.served()).endswith(f"/{first.id}/model")
    assert actions(world)[-1] == "failed"


async def test_a_failure_after_the_apply_puts_the_old_object_back(world: Any) -> None:
    first = await promote(world, ALICE, GOOD)
    world.registry.fail_on = "set_alias:previous"
    row = await promote(world, ALICE, PERFECT)
    assert row.state == FAILED
    assert storage_uri(world.cluster.served()).endswith(f"/{first.id}/model")


async def test_a_first_promotion_that_fails_removes_the_object_it_created(world: Any) -> None:
    original = world.store.transition

    def broken(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("to_state") == PROMOTED:
            raise RuntimeError("the database went away")
        return original(*args, **kwargs)

    world.store.transition = broken
    row = await promote(world, ALICE, PERFECT)
    assert row.state == FAILED
    assert world.cluster.served() is None
    assert world.registry.models["governed.vision.iris"]["aliases"] == {}


async def test_a_refused_rollback_leaves_champion_and_serving_as_they_were(world: Any) -> None:
    await promote(world, ALICE, GOOD)
    second = await promote(world, ALICE, PERFECT)
    world.cluster.refuse = ServingError(403, "The mlteams service may not apply")
    with pytest.raises(PromotionError) as info:
        await world.workflow.rollback(ALICE, "vision", "iris", None)
    assert info.value.http_status == 403
    assert world.registry.models["governed.vision.iris"]["aliases"]["champion"] == 2
    assert storage_uri(world.cluster.served()).endswith(f"/{second.id}/model")


async def test_a_tampered_artifact_blocks_the_apply_with_an_audit_row(world: Any) -> None:
    row = await promote(world, ALICE, PERFECT)
    await world.cluster.delete(NAMESPACE, "iris")
    world.objects.objects[f"s3://governed/vision/iris/{row.id}/model/model.pkl"] = b"swapped"
    with pytest.raises(PromotionError) as info:
        await world.workflow.serve(ALICE, "vision", "iris")
    assert info.value.http_status == 409
    assert "model.pkl" in info.value.message and "not served" in info.value.message
    assert world.cluster.served() is None
    (entry,) = [e for e in world.store.audit(model="iris") if e.action == "serving-blocked"]
    assert (entry.actor, entry.outcome, entry.to_version) == ("alice", "refused", 1)


async def test_serve_applies_the_champion_again_and_audits_it(world: Any) -> None:
    await promote(world, ALICE, PERFECT)
    await world.cluster.delete(NAMESPACE, "iris")
    state = await world.workflow.serve(ALICE, "vision", "iris")
    assert state["serving"]["exists"] and world.cluster.served() is not None
    assert actions(world)[-1] == "served"


async def test_serve_needs_a_champion_and_a_member(world: Any) -> None:
    with pytest.raises(PromotionError) as info:
        await world.workflow.serve(ALICE, "vision", "iris")
    assert info.value.http_status == 404 and "promote a version first" in info.value.message
    await promote(world, ALICE, PERFECT)
    with pytest.raises(PromotionError) as other:
        await world.workflow.serve(BOB, "vision", "iris")
    assert other.value.http_status in (403, 404)


@pytest.mark.parametrize("world", [{"mode": "gitops"}], indirect=True)
async def test_gitops_renders_and_never_applies(world: Any) -> None:
    row = await promote(world, ALICE, PERFECT)
    assert row.state == PROMOTED
    assert world.cluster.applied == []
    (manifest,) = await world.workflow.serving_manifests(ALICE, None)
    assert problems(manifest) == []
    assert storage_uri(manifest).endswith(f"/{row.id}/model")
    assert await world.workflow.serving_manifests(BOB, None) == []
    state = await world.workflow.serving_state(ALICE, "vision", "iris")
    assert state["serving"]["mode"] == "gitops" and "exists" not in state["serving"]
    with pytest.raises(PromotionError) as info:
        await world.workflow.serve(ALICE, "vision", "iris")
    assert info.value.http_status == 409


@pytest.mark.parametrize("world", [{"enabled": False}], indirect=True)
async def test_serving_off_touches_nothing(world: Any) -> None:
    assert (await promote(world, ALICE, PERFECT)).state == PROMOTED
    assert world.cluster.applied == []
    assert (await world.workflow.model(ALICE, "vision", "iris"))["serving"] is None
    assert await world.workflow.serving_manifests(ALICE, None) == []


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "words"),
    [
        (403, '{"message": "forbidden"}', 403, "RoleBinding"),
        (
            404,
            '{"message": "the server could not find the requested resource"}',
            503,
            "install KServe",
        ),
        (
            422,
            '{"message": ".spec.predictor.model.storageUrl: field not declared in schema"}',
            422,
            "storageUrl",
        ),
        (
            500,
            '{"message": "failed to create typed patch object (it-vision/iris; '
            "serving.kserve.io/v1beta1, Kind=InferenceService): "
            '.spec.predictor.model.storageUrl: field not declared in schema"}',
            422,
            "storageUrl",
        ),
        (500, '{"message": "etcd timeout"}', 503, "not answering"),
    ],
)
async def test_api_errors_become_messages_an_admin_can_act_on(
    status: int, body: str, expected_status: int, words: str
) -> None:
    from kubernetes_asyncio.client.exceptions import ApiException

    class Refusing:
        async def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
            assert kwargs["field_validation"] == "Strict" and kwargs["force"] is True
            assert kwargs["_content_type"] == "application/apply-patch+yaml"
            error = ApiException(status=status, reason="refused")
            error.body = body
            raise error

    services = InferenceServices.__new__(InferenceServices)
    services.custom = Refusing()  # type: ignore[assignment]
    services.timeout = 5
    manifest = {"metadata": {"name": "iris", "namespace": NAMESPACE}}
    with pytest.raises(ServingError) as info:
        await services.apply(manifest)
    assert info.value.http_status == expected_status and words in info.value.message


async def test_an_apply_that_creates_the_object_returns_it() -> None:
    """The API client gives nothing back for a 201 (created); the object is read instead."""
    stored = {"metadata": {"name": "iris", "namespace": NAMESPACE, "uid": "u-1"}}

    class Creating:
        async def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
            return None

        async def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
            assert args[2:] == (NAMESPACE, "inferenceservices", "iris")
            return stored

    services = InferenceServices.__new__(InferenceServices)
    services.custom = Creating()  # type: ignore[assignment]
    services.timeout = 5
    applied = await services.apply({"metadata": {"name": "iris", "namespace": NAMESPACE}})
    assert applied["metadata"]["uid"] == "u-1"
