"""The promotion workflow (``hub_ext.service.promotions``) with its real policy and a real sqlite
store, and stand-ins for MLflow, the object store and the evaluation Job that can be made to
fail at any step (failure injection). The same workflow against the real MLflow server, MinIO
and Jobs on the rig: tests/integration/test_promotion_on_rig.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hub_ext.policy import load_config
from hub_ext.policy.promotion import (
    EVALUATING,
    EXPIRED,
    FAILED,
    PENDING_APPROVAL,
    PROMOTED,
    REFUSED,
)
from hub_ext.service.candidate import Candidate, ModelFile
from hub_ext.service.object_store import ObjectMissing, StoreUnavailable
from hub_ext.service.promotions import Caller, PromotionError, Promotions, PromotionSettings
from hub_ext.service.registry import RegistryRefused, RegistryUnavailable
from hub_ext.service.store import Store

pytestmark = pytest.mark.unit

RUN = "a" * 32
EVALUATION = "sepal,petal,species\n1,1,a\n2,2,b\n3,3,a\n4,4,b\n"
LABELS = ["a", "b", "a", "b"]
CONFIG = {
    "profiles": {"cpu": {"image": "mlteams/notebook:dev"}},
    "teams": {
        "vision": {
            "groups": ["vision-engineers"],
            "lead_groups": ["vision-leads"],
            "quota": {"gpus": 0},
            "profiles": ["cpu"],
            "promotion": {
                "evaluation": {
                    "uri": "s3://governed/evaluation/vision.csv",
                    "label_column": "species",
                    "task": "classification",
                },
                "gates": {"accuracy": {"min": 0.75, "max_regression": 0.3}},
                "evidence": {"signature": True},
            },
        },
        "nlp": {
            "groups": ["nlp-engineers"],
            "lead_groups": ["nlp-leads"],
            "quota": {"gpus": 0},
            "profiles": ["cpu"],
            "promotion": {
                "evaluation": {
                    "uri": "s3://governed/evaluation/nlp.csv",
                    "label_column": "species",
                    "task": "classification",
                },
                "gates": {"accuracy": {"min": 0.5}},
                "high_stakes": True,
                "approval_ttl_hours": 1,
            },
        },
    },
}
ALICE = Caller("alice", ("vision-engineers",))
LENA = Caller("lena", ("vision-leads",))
BOB = Caller("bob", ("nlp-engineers",))
ERIN = Caller("erin", ("nlp-engineers",))
NORA = Caller("nora", ("nlp-leads",))
HUMAN = {"intended_use": "demo", "out_of_scope_use": "none", "limitations": "small"}


class Objects:
    """An in-memory object store; ``down`` makes every call fail as an unreachable store."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {
            f"s3://governed/evaluation/{team}.csv": EVALUATION.encode()
            for team in ("vision", "nlp")
        }
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the object store did not answer")

    async def put(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        self._check()
        self.objects[uri] = data

    async def get(self, uri: str) -> bytes:
        self._check()
        if uri not in self.objects:
            raise ObjectMissing(uri)
        return self.objects[uri]

    async def list(self, prefix_uri: str) -> list[str]:
        self._check()
        return sorted(uri for uri in self.objects if uri.startswith(prefix_uri))

    async def delete_prefix(self, prefix_uri: str) -> int:
        self._check()
        gone = [uri for uri in self.objects if uri.startswith(prefix_uri.rstrip("/") + "/")]
        for uri in gone:
            del self.objects[uri]
        return len(gone)


class Registry:
    """MLflow's registry in memory; ``fail_on`` names a method that fails once called."""

    def __init__(self, candidates: dict[str, Candidate]) -> None:
        self.candidates = candidates
        self.models: dict[str, dict[str, Any]] = {}
        self.fail_on: str | None = None

    def _maybe_fail(self, method: str) -> None:
        if self.fail_on == method:
            raise RegistryUnavailable(f"{method}: MLflow did not answer")

    async def candidate(self, run_id: str, artifact_path: str = "model") -> Candidate:
        self._maybe_fail("candidate")
        if run_id not in self.candidates:
            raise RegistryRefused(404, "RESOURCE_DOES_NOT_EXIST", f"Run {run_id} not found")
        return self.candidates[run_id]

    async def ensure_governed_model(self, name: str, team: str, model: str) -> Any:
        self._maybe_fail("ensure_governed_model")
        return self.models.setdefault(name, {"versions": {}, "aliases": {}})

    async def create_version(self, name: str, source: str, **kwargs: Any) -> int:
        self._maybe_fail("create_version")
        versions = self.models[name]["versions"]
        number = len(versions) + 1
        versions[number] = {"source": source, "tags": dict(kwargs.get("tags") or {})}
        return number

    async def delete_version(self, name: str, version: int) -> None:
        del self.models[name]["versions"][version]

    async def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._maybe_fail("set_version_tag")
        self.models[name]["versions"][version]["tags"][key] = value

    async def get_alias(self, name: str, alias: str) -> int | None:
        self._maybe_fail("get_alias")
        aliases: dict[str, int] = self.models.get(name, {}).get("aliases", {})
        return aliases.get(alias)

    async def set_alias(self, name: str, alias: str, version: int) -> None:
        if self.fail_on == f"set_alias:{alias}":
            raise RegistryUnavailable("set_alias: MLflow did not answer")
        self.models[name]["aliases"][alias] = version

    async def delete_alias(self, name: str, alias: str) -> None:
        self.models[name]["aliases"].pop(alias, None)


def candidate(run_id: str, predict: Callable[[list[str]], list[Any]], **logged: float) -> Candidate:
    files = {"MLmodel": b"flavors: {python_function: {}}\n", "model.pkl": run_id.encode()}

    async def read(path: str) -> bytes:
        return files[path]

    model = Candidate(
        run_id=run_id,
        artifact_path="model",
        model_id=f"m-{run_id[:8]}",
        files=tuple(ModelFile(path) for path in sorted(files)),
        reader=read,
        flavors={"python_function": {}},
        signature={"inputs": "[sepal: double, petal: double]", "outputs": "[species: string]"},
        params={"C": "1.0"},
        metrics=logged,
        tags={"mlteams.image": "mlteams/notebook:dev", "mlflow.source.git.commit": "abc123"},
    )
    object.__setattr__(model, "predict", predict)
    return model


PERFECT = candidate("a" * 32, lambda rows: list(LABELS))
GOOD = candidate("b" * 32, lambda rows: ["a", "b", "a", "a"])
POOR = candidate("c" * 32, lambda rows: ["a"] * 4)
LIAR = candidate("d" * 32, lambda rows: ["b", "a", "b", "a"], accuracy=0.99)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def world(tmp_path: Path) -> Any:
    store = Store(f"sqlite:///{tmp_path / 'service.sqlite'}")
    store.migrate()
    registry = Registry({c.run_id: c for c in (PERFECT, GOOD, POOR, LIAR)})
    objects = Objects()
    clock = Clock()
    evaluated: list[dict[str, Any]] = []

    async def evaluate(**kwargs: Any) -> list[Any]:
        evaluated.append(kwargs)
        model = registry.candidates[_run_of(objects, kwargs)]
        features = kwargs["features_csv"].decode().splitlines()
        assert "species" not in features[0]  # the labels never reach the model
        return model.predict(features[1:])  # type: ignore[attr-defined,no-any-return]

    workflow = Promotions(
        load_config(CONFIG),
        store,
        registry,  # type: ignore[arg-type]
        objects,  # type: ignore[arg-type]
        evaluate,
        PromotionSettings(governed_root="s3://governed"),
        now=clock,
    )
    yield type(
        "World",
        (),
        {
            "workflow": workflow,
            "store": store,
            "registry": registry,
            "objects": objects,
            "clock": clock,
            "evaluated": evaluated,
        },
    )
    store.close()


def _run_of(objects: Objects, kwargs: dict[str, Any]) -> str:
    """The run whose frozen model is evaluated (its model.pkl holds the run id)."""
    return objects.objects[kwargs["frozen"].file_uri("model.pkl")].decode()


async def promote(world: Any, caller: Caller, run: Candidate, **body: Any) -> Any:
    request = {"model": "iris", "run_id": run.run_id, **body}
    return await world.workflow.request(caller, request, wait=30)


def actions(world: Any, model: str = "iris") -> list[str]:
    return [entry.action for entry in reversed(world.store.audit(model=model))]


async def test_a_good_model_becomes_champion_with_its_card_and_audit(world: Any) -> None:
    row = await promote(world, ALICE, PERFECT)
    assert row.state == PROMOTED, row.error
    assert row.version == 1
    name = "governed.vision.iris"
    assert world.registry.models[name]["aliases"] == {"champion": 1}
    version = world.registry.models[name]["versions"][1]
    assert version["source"] == f"s3://governed/vision/iris/{row.id}/model"
    assert version["tags"]["mlteams.artifact_sha256"] == row.artifact_sha256
    assert version["tags"]["mlteams.card_sha256"] == row.card_sha256
    card = world.objects.objects[f"s3://governed/vision/iris/{row.id}/MODEL_CARD.md"].decode()
    assert card == row.card and "governed.vision.iris" in card and "alice" in card
    assert {g["gate"]: g["passed"] for g in row.gate_results}["accuracy.min"] is True
    assert row.measured["accuracy"] == 1.0
    assert actions(world) == ["requested", "gates-passed", "promoted"]
    (promoted,) = [e for e in world.store.audit(model="iris") if e.action == "promoted"]
    assert (promoted.actor, promoted.to_version, promoted.from_version) == ("alice", 1, None)
    assert promoted.artifact_sha256 == row.artifact_sha256
    assert world.evaluated[0]["namespace"] == "team-vision"
    assert world.evaluated[0]["image"] == "mlteams/notebook:dev"


async def test_a_worse_model_is_refused_with_each_failed_gate_named(world: Any) -> None:
    await promote(world, ALICE, PERFECT)
    row = await promote(world, ALICE, POOR)
    assert row.state == REFUSED
    failed = [g for g in row.gate_results if not g["passed"]]
    assert {g["gate"] for g in failed} == {"accuracy.min", "accuracy.max_regression"}
    minimum = next(g for g in failed if g["gate"] == "accuracy.min")
    assert (minimum["value"], minimum["threshold"]) == (0.5, 0.75)
    assert "accuracy" in row.error
    versions = world.registry.models["governed.vision.iris"]["versions"]
    assert list(versions) == [1]
    assert not [uri for uri in world.objects.objects if row.id in uri]  # nothing left frozen


async def test_logged_metrics_are_advisory_and_never_decide(world: Any) -> None:
    row = await promote(world, ALICE, LIAR)
    assert row.state == REFUSED
    gate = next(g for g in row.gate_results if g["gate"] == "accuracy.min")
    assert gate["value"] == 0.0 and gate["advisory"] == 0.99 and gate["passed"] is False


async def test_a_bad_request_is_answered_at_once_and_nothing_is_recorded(world: Any) -> None:
    for caller, body, status in [
        (ALICE, {"model": "Not A Label", "run_id": RUN}, 400),
        (ALICE, {"model": "iris", "run_id": "e" * 32}, 404),
        (ALICE, {"model": "iris", "run_id": RUN, "team": "nlp"}, 403),
        (Caller("mallory", ()), {"model": "iris", "run_id": RUN}, 403),
    ]:
        with pytest.raises(PromotionError) as info:
            await world.workflow.request(caller, body, wait=5)
        assert info.value.http_status == status, (body, info.value.message)
    assert world.store.promotions() == [] and world.store.audit() == []


async def test_mlflow_down_before_the_request_changes_nothing(world: Any) -> None:
    world.registry.fail_on = "candidate"
    with pytest.raises(PromotionError) as info:
        await promote(world, ALICE, PERFECT)
    assert info.value.http_status == 503
    assert world.store.promotions() == []


@pytest.mark.parametrize(
    "fail_on", ["create_version", "set_version_tag", "set_alias:champion", "set_alias:previous"]
)
async def test_a_failure_while_registering_leaves_nothing_half_done(
    world: Any, fail_on: str
) -> None:
    first = await promote(world, ALICE, PERFECT)
    world.registry.fail_on = fail_on
    row = await promote(world, ALICE, GOOD)
    assert row.state == FAILED and "MLflow" in row.error
    model = world.registry.models["governed.vision.iris"]
    assert list(model["versions"]) == [first.version]
    assert model["aliases"] == {"champion": first.version}
    assert actions(world)[-1] == "failed"
    world.registry.fail_on = None
    retried = await promote(world, ALICE, GOOD)
    assert retried.state == PROMOTED and retried.version == 2
    assert model["aliases"] == {"champion": 2, "previous": 1}


async def test_the_object_store_down_mid_promotion_fails_cleanly_and_a_retry_works(
    world: Any,
) -> None:
    world.objects.down = True
    row = await promote(world, ALICE, PERFECT)
    assert row.state == FAILED and "object store" in row.error
    assert "governed.vision.iris" not in world.registry.models
    world.objects.down = False
    assert (await promote(world, ALICE, PERFECT)).state == PROMOTED


async def test_high_stakes_waits_for_a_lead_never_the_requester(world: Any) -> None:
    row = await promote(world, BOB, PERFECT, team="nlp", **HUMAN)
    assert row.state == PENDING_APPROVAL
    assert "governed.nlp.iris" not in world.registry.models
    for caller in (BOB, ERIN):
        with pytest.raises(PromotionError) as info:
            await world.workflow.approve(caller, row.id, "looks fine")
        assert info.value.http_status == 403
    approved = await world.workflow.approve(NORA, row.id, "reviewed the card")
    assert approved.state == PROMOTED and approved.approver == "nora"
    assert world.registry.models["governed.nlp.iris"]["aliases"] == {"champion": 1}
    assert "nora" in approved.card
    with pytest.raises(PromotionError) as again:
        await world.workflow.approve(NORA, row.id, "twice")
    assert again.value.http_status == 409
    assert actions(world) == [
        "requested",
        "awaiting-approval",
        "approved",
        "promoted",
    ]


async def test_high_stakes_needs_the_human_fields_of_the_card(world: Any) -> None:
    with pytest.raises(PromotionError) as info:
        await promote(world, BOB, PERFECT, team="nlp")
    assert info.value.http_status == 400 and "intended_use" in info.value.message


async def test_an_expired_request_cannot_be_approved(world: Any) -> None:
    row = await promote(world, BOB, PERFECT, team="nlp", **HUMAN)
    world.clock.at += timedelta(hours=2)
    with pytest.raises(PromotionError) as info:
        await world.workflow.approve(NORA, row.id, "late")
    assert info.value.http_status == 409 and "expired" in info.value.message
    assert world.store.promotion(row.id).state == EXPIRED
    assert "governed.nlp.iris" not in world.registry.models


async def test_a_tampered_frozen_model_is_never_registered(world: Any) -> None:
    row = await promote(world, BOB, PERFECT, team="nlp", **HUMAN)
    pickle = f"s3://governed/nlp/iris/{row.id}/model/model.pkl"
    world.objects.objects[pickle] = b"changed after the evaluation"
    with pytest.raises(PromotionError) as info:
        await world.workflow.approve(NORA, row.id, "ok")
    assert info.value.http_status == 409 and "model.pkl" in info.value.message
    assert (
        "governed.nlp.iris" not in world.registry.models
        or not world.registry.models["governed.nlp.iris"]["versions"]
    )


async def test_rollback_restores_the_previous_version_and_is_audited(world: Any) -> None:
    await promote(world, ALICE, GOOD)
    await promote(world, ALICE, PERFECT)
    aliases = world.registry.models["governed.vision.iris"]["aliases"]
    assert aliases == {"champion": 2, "previous": 1}
    result = await world.workflow.rollback(ALICE, "vision", "iris", None)
    assert result["aliases"] == {"champion": 1, "previous": 2}
    assert aliases == {"champion": 1, "previous": 2}
    (entry,) = [e for e in world.store.audit(model="iris") if e.action == "rolled-back"]
    assert (entry.actor, entry.from_version, entry.to_version) == ("alice", 2, 1)
    model = await world.workflow.model(ALICE, "vision", "iris")
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["aliases"] == {"champion": 1, "previous": 2}


async def test_a_rollback_to_a_tampered_version_is_blocked_and_audited(world: Any) -> None:
    first = await promote(world, ALICE, GOOD)
    await promote(world, ALICE, PERFECT)
    world.objects.objects[f"s3://governed/vision/iris/{first.id}/model/model.pkl"] = b"x"
    with pytest.raises(PromotionError) as info:
        await world.workflow.rollback(ALICE, "vision", "iris", 1)
    assert info.value.http_status == 409 and "model.pkl" in info.value.message
    assert world.registry.models["governed.vision.iris"]["aliases"]["champion"] == 2
    assert actions(world)[-1] == "rollback-blocked"


async def test_other_teams_see_none_of_it(world: Any) -> None:
    row = await promote(world, ALICE, PERFECT)
    with pytest.raises(PromotionError) as info:
        await world.workflow.promotion(BOB, row.id)
    assert info.value.http_status == 404
    assert await world.workflow.promotions(BOB, None, None, None) == []
    assert await world.workflow.audit(BOB, None, None) == []
    assert [r.id for r in await world.workflow.promotions(LENA, None, None, None)] == [row.id]


async def test_promotions_left_evaluating_by_a_restart_are_failed(world: Any) -> None:
    world.store.add_promotion(
        id="f" * 32,
        team="vision",
        model="iris",
        governed_name="governed.vision.iris",
        requester="alice",
        run_id=RUN,
        artifact_path="model",
        state=EVALUATING,
        created_at=world.clock(),
        updated_at=world.clock(),
    )
    assert await world.workflow.recover() == 1
    row = world.store.promotion("f" * 32)
    assert row.state == FAILED and "restarted" in row.error
