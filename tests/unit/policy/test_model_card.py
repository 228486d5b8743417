"""The card's code spans (git commit, image, digests) keep run tags on one line inside the span."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml

from hub_ext.policy.model_card import CardFacts, render_card

pytestmark = pytest.mark.unit

BREAKOUTS = ["abc\n\n# Heading\n", "x`\n\n<script>alert(1)</script>", "a\r\n\r\n| col |"]


def _card(**overrides: object) -> str:
    facts = CardFacts(
        name="governed.vision.iris",
        version=1,
        team="vision",
        model="iris",
        author="alice",
        promotion_id="p-1",
        created=datetime(2026, 12, 2, tzinfo=timezone.utc),
        artifact_sha256="ab" * 32,
        metrics={"accuracy": 0.9},
        evaluation={"uri": "s3://gov/eval/v.csv", "sha256": "cd" * 32, "task": "classification"},
    )
    return render_card(CardFacts(**{**facts.__dict__, **overrides}))


@pytest.mark.parametrize("value", BREAKOUTS)
@pytest.mark.parametrize("key", ["git_commit", "image"])
def test_a_run_tag_stays_inside_its_code_span(key: str, value: str) -> None:
    text = _card(**{key: value})
    body = text.split("---\n", 2)[2]
    [line] = [line for line in body.splitlines() if line.startswith("Git commit: ")]
    assert line.count("`") == 4, line
    assert not any(
        line.startswith(("# Heading", "<script>", "| col |")) for line in body.splitlines()
    )
    assert "<script>" not in body.replace(line, "")
    assert yaml.safe_load(text.split("---\n", 2)[1])["license"] == "other"


@pytest.mark.parametrize("value", BREAKOUTS)
def test_a_dataset_digest_stays_inside_its_code_span(value: str) -> None:
    text = _card(dataset_inputs=[{"name": "iris", "source": "s3://t/iris.csv", "digest": value}])
    [line] = [line for line in text.splitlines() if line.startswith("- iris")]
    assert line.count("`") == 2, line
    assert not any(
        line.startswith(("# Heading", "<script>", "| col |")) for line in text.splitlines()
    )
