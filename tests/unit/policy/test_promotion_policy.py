"""Promotion policy, table by table: requests, rules, approvals, rollback, gates, evaluation data
and the model card."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import yaml

from hub_ext.policy import load_config
from hub_ext.policy.evaluation_data import EvaluationDataError, split_labels
from hub_ext.policy.gates import CandidateEvidence, check_gates
from hub_ext.policy.model_card import CardFacts, render_card
from hub_ext.policy.promotion import (
    PromotionRefused,
    check_human_fields,
    choose_rollback,
    expires_at,
    governed_name,
    is_expired,
    may_approve,
    parse_request,
    rules_for,
)

pytestmark = pytest.mark.unit

RUN = "0123456789abcdef" * 2
EVALUATION = {"uri": "s3://gov/eval/v.csv", "label_column": "y", "task": "classification"}
CONFIG = load_config(
    {
        "profiles": {"cpu": {"image": "img"}},
        "teams": {
            "vision": {
                "groups": ["vision-engineers"],
                "lead_groups": ["vision-leads"],
                "quota": {"gpus": 0},
                "profiles": ["cpu"],
                "promotion": {
                    "evaluation": EVALUATION,
                    "gates": {"accuracy": {"min": 0.9, "max_regression": 0.02}},
                    "evidence": {"signature": True, "dataset_inputs": True},
                    "approver_groups": ["model-risk"],
                    "models": {"fraud": {"high_stakes": True, "gates": {"f1_macro": {"min": 0.8}}}},
                },
            },
            "nlp": {"quota": {"gpus": 0}, "profiles": ["cpu"]},
        },
    }
)
VISION = CONFIG.teams["vision"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Send a JSON object"),
        ({"model": "iris", "run_id": RUN, "stage": "prod"}, "Unknown key 'stage'"),
        ({"run_id": RUN}, "model must be your team's name"),
        ({"model": "Iris_1", "run_id": RUN}, "model must be your team's name"),
        ({"model": "iris", "run_id": "abc"}, "run_id must be the MLflow run"),
        ({"model": "iris", "run_id": RUN, "artifact_path": "../x"}, "artifact_path must be"),
        ({"model": "iris", "run_id": RUN, "artifact_path": "/abs"}, "artifact_path must be"),
        ({"model": "iris", "run_id": RUN, "team": 3}, "team must be"),
        ({"model": "iris", "run_id": RUN, "limitations": ["x"]}, "limitations must be text"),
        ({"model": "iris", "run_id": RUN, "intended_use": "x" * 5001}, "at most 5000"),
    ],
)
def test_bad_requests_are_refused_with_what_to_change(body: Any, message: str) -> None:
    with pytest.raises(PromotionRefused) as info:
        parse_request(body)
    assert info.value.http_status == 400 and message in info.value.message


def test_a_request_with_defaults() -> None:
    request = parse_request({"model": "iris", "run_id": RUN, "intended_use": "  demo  "})
    assert (request.model, request.artifact_path, request.team) == ("iris", "model", None)
    assert request.intended_use == "demo" and request.limitations is None


@pytest.mark.parametrize(
    ("model", "gates", "high_stakes"),
    [
        ("iris", {"accuracy"}, False),
        ("fraud", {"f1_macro"}, True),
    ],
)
def test_a_models_own_rules_replace_the_teams_key_by_key(
    model: str, gates: set[str], high_stakes: bool
) -> None:
    rules = rules_for(CONFIG, "vision", model)
    assert set(rules.gates) == gates and rules.high_stakes is high_stakes
    assert rules.evaluation is not None and rules.evaluation.uri == EVALUATION["uri"]
    assert (rules.champion_alias, rules.previous_alias) == ("champion", "previous")
    assert rules.approval_ttl_seconds == 72 * 3600
    assert governed_name("vision", model) == f"governed.vision.{model}"


def test_an_unknown_team_has_no_rules() -> None:
    with pytest.raises(PromotionRefused) as info:
        rules_for(CONFIG, "audio", "iris")
    assert info.value.http_status == 404


def test_high_stakes_needs_every_human_field() -> None:
    rules = rules_for(CONFIG, "vision", "fraud")
    with pytest.raises(PromotionRefused) as info:
        check_human_fields(
            rules, parse_request({"model": "fraud", "run_id": RUN, "intended_use": "triage"})
        )
    assert "out_of_scope_use, limitations" in info.value.message
    complete = {"intended_use": "a", "out_of_scope_use": "b", "limitations": "c"}
    check_human_fields(rules, parse_request({"model": "fraud", "run_id": RUN, **complete}))
    check_human_fields(
        rules_for(CONFIG, "vision", "iris"), parse_request({"model": "iris", "run_id": RUN})
    )


@pytest.mark.parametrize(
    ("approver", "groups", "requester", "message"),
    [
        ("lena", ("vision-leads",), "alice", ""),
        ("rita", ("model-risk",), "alice", ""),
        ("lena", ("vision-leads",), "lena", "you asked for this promotion"),
        ("bert", ("vision-engineers",), "alice", "Only members of vision-leads"),
        ("nils", ("nlp-leads",), "alice", "Only members of"),
    ],
)
def test_who_may_approve(
    approver: str, groups: tuple[str, ...], requester: str, message: str
) -> None:
    allowed = not message
    rules = rules_for(CONFIG, "vision", "fraud")
    call = lambda: may_approve(  # noqa: E731
        approver=approver,
        approver_groups=groups,
        requester=requester,
        team=VISION,
        rules=rules,
        config=CONFIG,
    )
    if allowed:
        call()
        return
    with pytest.raises(PromotionRefused) as info:
        call()
    assert info.value.http_status == 403 and message.lower() in info.value.message.lower()


def test_requests_expire_after_their_time() -> None:
    rules = rules_for(CONFIG, "vision", "fraud")
    asked = datetime(2026, 12, 1, tzinfo=timezone.utc)
    ends = expires_at(asked, rules)
    assert ends == asked + timedelta(hours=72)
    assert not is_expired(ends, ends - timedelta(seconds=1))
    assert is_expired(ends, ends)


@pytest.mark.parametrize(
    ("versions", "current", "target", "expected"),
    [
        ([1, 2, 3], 3, None, 2),
        ([1, 2, 3], 2, None, 1),
        ([1, 2, 3], 3, 1, 1),
        ([1, 3], 3, None, 1),
        ([1], 1, None, 409),
        ([1, 2], 2, 2, 409),
        ([1, 2], 2, 7, 404),
    ],
)
def test_where_a_rollback_goes(
    versions: list[int], current: int, target: int | None, expected: int
) -> None:
    if expected >= 400:
        with pytest.raises(PromotionRefused) as info:
            choose_rollback(versions, current, target)
        assert info.value.http_status == expected
    else:
        assert choose_rollback(versions, current, target) == expected


EVIDENCE = CandidateEvidence(has_signature=True, dataset_inputs=1)


@pytest.mark.parametrize(
    ("measured", "champion", "evidence", "failed"),
    [
        ({"accuracy": 0.95}, None, EVIDENCE, set()),
        ({"accuracy": 0.95}, {"accuracy": 0.96}, EVIDENCE, set()),
        ({"accuracy": 0.93}, {"accuracy": 0.96}, EVIDENCE, {"accuracy.max_regression"}),
        ({"accuracy": 0.5}, None, EVIDENCE, {"accuracy.min"}),
        ({}, None, EVIDENCE, {"accuracy.min", "accuracy.max_regression"}),
        (
            {"accuracy": 0.95},
            None,
            CandidateEvidence(False, 0),
            {"evidence.signature", "evidence.dataset_inputs"},
        ),
    ],
)
def test_gates(
    measured: dict[str, float],
    champion: dict[str, float] | None,
    evidence: CandidateEvidence,
    failed: set[str],
) -> None:
    report = check_gates(
        rules_for(CONFIG, "vision", "iris"),
        measured,
        champion=champion,
        evidence=evidence,
        logged={},
    )
    assert {result.gate for result in report.failures} == failed
    assert report.passed is (not failed)


def test_a_gate_names_metric_value_and_threshold_and_logged_values_only_advise() -> None:
    report = check_gates(
        rules_for(CONFIG, "vision", "iris"),
        {"accuracy": 0.62},
        champion=None,
        evidence=EVIDENCE,
        logged={"accuracy": 0.99},
    )
    (minimum,) = [r for r in report.results if r.gate == "accuracy.min"]
    assert (minimum.value, minimum.threshold, minimum.advisory) == (0.62, 0.9, 0.99)
    assert minimum.message == "accuracy 0.620 is below the minimum 0.900"
    assert not report.passed
    assert [r["gate"] for r in report.to_json()][:2] == ["accuracy.min", "accuracy.max_regression"]


def test_lower_is_better_metrics_regress_upwards() -> None:
    config = load_config(
        {
            "profiles": {"cpu": {"image": "img"}},
            "teams": {
                "t": {
                    "quota": {"gpus": 0},
                    "profiles": ["cpu"],
                    "promotion": {
                        "evaluation": {**EVALUATION, "task": "regression"},
                        "gates": {"rmse": {"max": 1.0, "max_regression": 0.1}},
                        "evidence": {"signature": False},
                    },
                }
            },
        }
    )
    rules = rules_for(config, "t", "m")
    good = check_gates(rules, {"rmse": 0.55}, champion={"rmse": 0.5}, evidence=EVIDENCE, logged={})
    worse = check_gates(rules, {"rmse": 0.65}, champion={"rmse": 0.5}, evidence=EVIDENCE, logged={})
    assert good.passed and [r.gate for r in worse.failures] == ["rmse.max_regression"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"a,y\n", "no rows"),
        (b"a,b\n1,2\n", "no column 'y'"),
        (b"a,y\n1\n", "row 2"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_unusable_evaluation_sets(data: bytes, message: str) -> None:
    with pytest.raises(EvaluationDataError, match=message):
        split_labels(data, "y")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the evaluation set is empty"),
        (b"a,y\n\n", "the evaluation set has a header but no rows"),
        (b"a,b\n1,2\n", "the evaluation set has no column 'y'; its columns are 'a', 'b'"),
        (b"a,y\n1,2\n3\n", "row 3 of the evaluation set has 1 values, the header 2"),
        (b"a,y\n\xff,1\n", "the evaluation set is not UTF-8 text"),
    ],
)
def test_unusable_evaluation_sets_are_refused_word_for_word(data: bytes, message: str) -> None:
    with pytest.raises(EvaluationDataError) as caught:
        split_labels(data, "y")
    assert str(caught.value) == message


def test_the_labels_are_split_off_in_row_order() -> None:
    features, labels = split_labels(b"a,y,b\n1,cat,2\n3,dog,4\n", "y")
    assert features == b"a,b\n1,2\n3,4\n" and labels == ["cat", "dog"]


def card(**overrides: Any) -> str:
    facts: dict[str, Any] = dict(
        name="governed.vision.iris",
        version=3,
        team="vision",
        model="iris",
        author="alice",
        promotion_id="f" * 32,
        created=datetime(2026, 12, 2, tzinfo=timezone.utc),
        artifact_sha256="ab" * 32,
        gate_results=[
            {"gate": "accuracy.min", "passed": True, "message": "accuracy 0.970 meets 0.900"}
        ],
        params={"C": "1.0"},
        metrics={"accuracy": 0.97},
        logged_metrics={"accuracy": 0.99},
        evaluation={"uri": "s3://gov/eval/v.csv", "sha256": "cd" * 32, "task": "classification"},
        dataset_inputs=[{"name": "iris", "source": "s3://team-vision/iris.csv", "digest": "e1"}],
        signature={"inputs": "[petal: double]", "outputs": "[species: string]"},
        flavors=["python_function", "sklearn"],
        requirements="scikit-learn==1.9.1\n",
        git_commit="abc123",
        image="mlteams/notebook:dev",
    )
    return render_card(CardFacts(**{**facts, **overrides}))


def test_the_card_has_hugging_face_front_matter_and_every_fact() -> None:
    text = card(approver="lena", human={"intended_use": "sorting flowers"})
    _, matter, body = text.split("---\n", 2)
    front = yaml.safe_load(matter)
    assert front["library_name"] == "mlflow" and "sklearn" in front["tags"]
    [index] = front["model-index"]
    [result] = index["results"]
    assert result["task"]["type"] == "tabular-classification"
    assert result["metrics"] == [{"type": "accuracy", "value": 0.97, "name": "accuracy"}]
    assert result["dataset"]["revision"] == "cd" * 32
    for fact in (
        "version 3",
        "alice",
        "lena",
        "sorting flowers",
        "0.9700",
        "0.9900",
        "abc123",
        "scikit-learn==1.9.1",
        "ab" * 32,
        "e1",
        "accuracy.min",
    ):
        assert fact in body.replace("\\", ""), fact
    assert "Limitations\n\nnot provided" in body


@pytest.mark.parametrize(
    "value", ["{{ 7*7 }}", "| col | x |", "<script>alert(1)</script>", "---\nlicense: mit", "`x`"]
)
def test_user_text_cannot_break_the_card(value: str) -> None:
    text = card(params={"C": value}, human={"limitations": value})
    assert "49" not in text
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert front["license"] == "other"
    table = [line for line in text.splitlines() if line.startswith("| C |")]
    assert len(table) == 1 and table[0].count(" | ") == 1 and table[0].endswith(" |")
    assert "<script>" not in text
