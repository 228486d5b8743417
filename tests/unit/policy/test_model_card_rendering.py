"""What a reader of a model card sees: the body line by line, the front matter a model hub
indexes, and what the card says when a fact is missing."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import yaml

from hub_ext.policy.model_card import CardFacts, render_card

pytestmark = pytest.mark.unit


def full_facts() -> dict[str, Any]:
    """Every fact the service can know about a version, fresh for each use."""
    return {
        "name": "governed.vision.iris",
        "version": 3,
        "team": "vision",
        "model": "iris",
        "author": "alice",
        "promotion_id": "p-7",
        "created": datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=timezone.utc),
        "artifact_sha256": "ab" * 4,
        "gate_results": [
            {"gate": "accuracy.min", "passed": True, "message": "accuracy 0.970 meets 0.900"},
            {"gate": "f1.min", "passed": False, "message": "f1 0.5 below 0.8"},
        ],
        "approver": "lena",
        "human": {
            "intended_use": "sorting flowers",
            "out_of_scope_use": "medical use",
            "limitations": "small sample",
        },
        "params": {"max_depth": "4", "C": "1.0"},
        "metrics": {"f1": 0.5, "accuracy": 0.97},
        "logged_metrics": {"accuracy": 0.99},
        "evaluation": {"uri": "s3://gov/eval/v.csv", "sha256": "cd" * 4, "task": "classification"},
        "dataset_inputs": [{"name": "iris", "source": "s3://team-vision/iris.csv", "digest": "e1"}],
        "signature": {"inputs": "[petal: double]", "outputs": "[species: string]"},
        "flavors": ["sklearn", "python_function"],
        "requirements": "scikit-learn==1.9.1\nnumpy==2.1\n",
        "git_commit": "abc123",
        "image": "mlteams/notebook:dev",
        "profile": "gpu1",
    }


FULL_BODY = """\
# governed\\.vision\\.iris, version 3

Team **vision**, model **iris**; promoted by **alice** on 2026-12-02T09:30:15+00:00 \
(promotion `p-7`). Approved by: lena.

## Intended use

sorting flowers

## Out-of-scope use

medical use

## Limitations

small sample

## Evaluation

Measured by the promotion service on s3://gov/eval/v\\.csv (sha256 `cdcdcdcd`), \
task classification.

| metric | measured | logged by the author (advisory) |
|---|---|---|
| accuracy | 0.9700 | 0.9900 |
| f1 | 0.5000 |  |

## Gates

| gate | result | detail |
|---|---|---|
| accuracy\\.min | passed | accuracy 0\\.970 meets 0\\.900 |
| f1\\.min | failed | f1 0\\.5 below 0\\.8 |

## Training

| parameter | value |
|---|---|
| C | 1\\.0 |
| max\\_depth | 4 |

Datasets:

- iris: s3://team\\-vision/iris\\.csv (digest `e1`)

Git commit: `abc123`; image: `mlteams/notebook:dev`; profile: gpu1.

## Model

Flavors: sklearn, python\\_function. Frozen files: sha256 `abababab`.

Signature inputs: \\[petal: double\\]

Signature outputs: \\[species: string\\]

Requirements:

```
scikit-learn==1.9.1
numpy==2.1
```
"""


def render(**overrides: Any) -> tuple[str, dict[str, Any], str]:
    """The card of the full facts with ``overrides``: its text, parsed front matter and body."""
    text = render_card(CardFacts(**{**full_facts(), **overrides}))
    start, matter, body = text.split("---\n", 2)
    assert start == "" and body.startswith("\n")
    return matter, yaml.safe_load(matter), body[1:]


def line_starting(body: str, prefix: str) -> str:
    [line] = [line for line in body.splitlines() if line.startswith(prefix)]
    return line


def test_a_full_card_reads_every_fact_in_order() -> None:
    """Each section shows its fact: names escaped for Markdown, metrics measured and logged to
    four places in name order, gates with their result, parameters sorted, the creation time to
    the second, flavors as given and the requirements verbatim in a fence."""
    _, _, body = render()
    assert body == FULL_BODY


def test_the_front_matter_lists_the_facts_a_model_hub_indexes() -> None:
    """The front matter keeps its keys in reading order (license first), tags the flavors sorted
    and lists each measured metric rounded to six places under the evaluation data set."""
    matter, front, _ = render(metrics={"f1": 0.5, "accuracy": 0.123456789})
    assert matter.startswith("license: other\nlibrary_name: mlflow\ntags:\n")
    assert list(front) == [
        "license",
        "library_name",
        "tags",
        "model_name",
        "mlteams",
        "model-index",
    ]
    assert front["tags"] == ["mlteams", "team-vision", "python_function", "sklearn"]
    assert front["model_name"] == "governed.vision.iris"
    assert front["mlteams"] == {
        "team": "vision",
        "model": "iris",
        "version": 3,
        "promotion_id": "p-7",
        "author": "alice",
        "approver": "lena",
        "artifact_sha256": "abababab",
        "high_stakes": False,
    }
    assert front["model-index"] == [
        {
            "name": "governed.vision.iris",
            "results": [
                {
                    "task": {"type": "tabular-classification"},
                    "dataset": {
                        "name": "s3://gov/eval/v.csv",
                        "type": "mlteams-evaluation",
                        "revision": "cdcdcdcd",
                    },
                    "metrics": [
                        {"type": "accuracy", "value": 0.123457, "name": "accuracy"},
                        {"type": "f1", "value": 0.5, "name": "f1"},
                    ],
                }
            ],
        }
    ]


def test_names_outside_ascii_stay_readable_in_the_front_matter() -> None:
    """An author or approver named with accents appears as written, not as escape codes."""
    matter, front, _ = render(author="zoë", approver="Ådne")
    assert "  author: zoë\n" in matter and "  approver: Ådne\n" in matter
    assert front["mlteams"]["author"] == "zoë"


@pytest.mark.parametrize(
    ("evaluation", "task", "name", "revision"),
    [
        (
            {"uri": "s3://e.csv", "sha256": "ef", "task": "regression"},
            "tabular-regression",
            "s3://e.csv",
            "ef",
        ),
        (
            {"uri": "s3://e.csv", "task": "classification"},
            "tabular-classification",
            "s3://e.csv",
            "",
        ),
        ({"sha256": "ef", "task": "classification"}, "tabular-classification", "", "ef"),
    ],
)
def test_the_model_index_names_the_task_and_the_evaluation_file(
    evaluation: dict[str, str], task: str, name: str, revision: str
) -> None:
    """A regression is indexed as tabular regression; an evaluation without a file name or
    digest gives an empty name or revision, not the word None."""
    _, front, _ = render(evaluation=dict(evaluation))
    [result] = front["model-index"][0]["results"]
    assert result["task"] == {"type": task}
    assert result["dataset"] == {
        "name": name,
        "type": "mlteams-evaluation",
        "revision": revision,
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"evaluation": {"uri": "s3://e.csv", "sha256": "ef", "task": "clustering"}},
        {"evaluation": None},
        {"metrics": {}},
    ],
    ids=["unknown task", "no evaluation", "no metrics"],
)
def test_no_model_index_without_both_a_known_task_and_metrics(overrides: dict[str, Any]) -> None:
    """The model index is written only when there is a task a model hub knows and a measured
    metric; the rest of the front matter stays."""
    _, front, _ = render(**overrides)
    assert "model-index" not in front
    assert front["license"] == "other" and front["model_name"] == "governed.vision.iris"


def test_missing_facts_are_named_as_missing() -> None:
    """A card of the bare facts says "not provided", "none" or "none recorded" where a fact is
    missing and that no approval was required."""
    facts = {key: full_facts()[key] for key in ("name", "version", "team", "model", "author")}
    text = render_card(
        CardFacts(
            **facts, promotion_id="p-8", created=full_facts()["created"], artifact_sha256="ff"
        )
    )
    body = text.split("---\n", 2)[2]
    assert "Approved by: not required." in body
    for section in ("Intended use", "Out-of-scope use", "Limitations"):
        assert f"## {section}\n\nnot provided\n" in body
    assert (
        "Measured by the promotion service on not provided (sha256 `none`), task not provided."
    ) in body
    assert "Datasets:\n\n- none recorded\n" in body
    assert "Git commit: `none`; image: `none`; profile: not provided.\n" in body
    assert "Flavors: not provided. Frozen files: sha256 `ff`." in body
    assert "Signature inputs: not provided\n\nSignature outputs: not provided\n" in body
    assert body.endswith("Requirements:\n\n```\nnone recorded\n```\n")


def test_an_empty_human_field_reads_not_provided() -> None:
    """A field left empty in the form is shown as not provided rather than as a blank section."""
    _, _, body = render(human={"intended_use": "", "limitations": "   "})
    assert "## Intended use\n\nnot provided\n" in body
    assert "## Out-of-scope use\n\nnot provided\n" in body


@pytest.mark.parametrize(("high_stakes", "shown"), [(True, "required"), (False, "not required")])
def test_a_version_without_approver_says_whether_one_was_required(
    high_stakes: bool, shown: str
) -> None:
    _, front, body = render(approver=None, high_stakes=high_stakes)
    assert f"Approved by: {shown}.\n" in body
    assert front["mlteams"]["approver"] is None
    assert front["mlteams"]["high_stakes"] is high_stakes


def test_code_spans_and_the_requirements_fence_cannot_be_closed_early() -> None:
    """A run tag with backticks or several spaces stays one tidy code span, and a requirements
    file with a fence of its own stays inside the card's fence."""
    _, _, body = render(
        git_commit="abc  123",
        image="img `x`\n  tag",
        requirements="\n```\nnumpy==2.1\n```\n",
    )
    assert line_starting(body, "Git commit: ") == (
        "Git commit: `abc 123`; image: `img 'x' tag`; profile: gpu1."
    )
    assert body.endswith("Requirements:\n\n```\n'''\nnumpy==2.1\n'''\n```\n")


def test_facts_kept_as_json_are_read_back_with_what_the_service_knows_now() -> None:
    """Stored facts fill the card; keys the card does not know are ignored, and the values the
    service passes at promotion time win over stored ones."""
    stored = {
        "params": {"C": "2.0"},
        "git_commit": "def456",
        "approver": "mallory",
        "obsolete_field": "ignored",
    }
    facts = CardFacts.from_json(
        stored,
        name="governed.vision.iris",
        version=4,
        team="vision",
        model="iris",
        author="alice",
        promotion_id="p-9",
        created=datetime(2026, 12, 3, tzinfo=timezone.utc),
        artifact_sha256="ee",
        approver="lena",
    )
    body = render_card(facts).split("---\n", 2)[2]
    assert "| C | 2\\.0 |" in body
    assert "Git commit: `def456`" in body
    assert "Approved by: lena." in body
    assert facts.params == {"C": "2.0"} and facts.version == 4
