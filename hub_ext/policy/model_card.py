"""The model card of a governed version: Markdown with Hugging Face-compatible front matter.

Built from what the service knows (the run's metadata, its own measurements, the gate results,
the hub identities of requester and approver) plus the human fields. The front matter is YAML
written by ``yaml.safe_dump``; the body is a Jinja template rendered in a sandbox, and every
value that came from a user is escaped for Markdown, so a parameter such as ``{{ 7*7 }}`` or
``| x |`` appears as written and cannot break the card.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from jinja2.sandbox import SandboxedEnvironment

NOT_PROVIDED = "not provided"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")

TEMPLATE = """\
# {{ name | md }}, version {{ version }}

Team **{{ team | md }}**, model **{{ model | md }}**; promoted by **{{ author | md }}** on \
{{ created }} (promotion `{{ promotion_id }}`). Approved by: {{ approver | md }}.

## Intended use

{{ intended_use | md }}

## Out-of-scope use

{{ out_of_scope_use | md }}

## Limitations

{{ limitations | md }}

## Evaluation

Measured by the promotion service on {{ evaluation_uri | md }} (sha256 `{{ evaluation_sha }}`), \
task {{ task | md }}.

| metric | measured | logged by the author (advisory) |
|---|---|---|
{% for name, value in metrics %}| {{ name | md }} | {{ value }} | {{ logged.get(name, "") }} |
{% endfor %}
## Gates

| gate | result | detail |
|---|---|---|
{% for gate in gates %}| {{ gate.gate | md }} | {{ "passed" if gate.passed else "failed" }} | \
{{ gate.message | md }} |
{% endfor %}
## Training

| parameter | value |
|---|---|
{% for name, value in params %}| {{ name | md }} | {{ value | md }} |
{% endfor %}
Datasets:
{% for dataset in datasets %}
- {{ dataset.name | md }}: {{ dataset.source | md }} (digest `{{ dataset.digest | code }}`)
{%- else %}
- none recorded
{%- endfor %}

Git commit: `{{ git_commit | code }}`; image: `{{ image | code }}`; profile: {{ profile | md }}.

## Model

Flavors: {{ flavors | md }}. Frozen files: sha256 `{{ artifact_sha256 }}`.

Signature inputs: {{ signature_inputs | md }}

Signature outputs: {{ signature_outputs | md }}

Requirements:

```
{{ requirements | fence }}
```
"""


def _markdown(value: Any) -> str:
    """``value`` as literal Markdown text on one line."""
    text = " ".join(str(value).split()) if value not in (None, "") else NOT_PROVIDED
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _code(value: Any) -> str:
    """``value`` inside a code span: on one line (a blank line would end the span's paragraph)
    and without backticks (one would end the span)."""
    return " ".join(str(value or "none").split()).replace("`", "'")


def _fence(value: Any) -> str:
    return str(value or "none recorded").replace("```", "'''").strip()


_ENVIRONMENT = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
_ENVIRONMENT.filters.update(md=_markdown, code=_code, fence=_fence)
_TEMPLATE = _ENVIRONMENT.from_string(TEMPLATE)


@dataclass(frozen=True)
class CardFacts:
    name: str
    version: int
    team: str
    model: str
    author: str
    promotion_id: str
    created: datetime
    artifact_sha256: str
    gate_results: Sequence[Mapping[str, Any]] = ()
    approver: str | None = None
    human: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    logged_metrics: Mapping[str, float] = field(default_factory=dict)
    evaluation: Mapping[str, Any] | None = None
    dataset_inputs: Sequence[Mapping[str, Any]] = ()
    signature: Mapping[str, Any] | None = None
    flavors: Sequence[str] = ()
    requirements: str | None = None
    git_commit: str | None = None
    image: str | None = None
    profile: str | None = None
    high_stakes: bool = False

    @classmethod
    def from_json(cls, facts: Mapping[str, Any], **known: Any) -> CardFacts:
        """The facts the service kept at evaluation time, with what it knows now."""
        names = set(cls.__dataclass_fields__)
        kept = {key: value for key, value in facts.items() if key in names}
        return cls(**{**kept, **known})


def _front_matter(facts: CardFacts) -> dict[str, Any]:
    evaluation = facts.evaluation or {}
    task = (
        "tabular-classification"
        if evaluation.get("task") == "classification"
        else ("tabular-regression" if evaluation.get("task") == "regression" else None)
    )
    results = [
        {"type": name, "value": round(float(value), 6), "name": name}
        for name, value in sorted(facts.metrics.items())
    ]
    matter: dict[str, Any] = {
        "license": "other",
        "library_name": "mlflow",
        "tags": ["mlteams", f"team-{facts.team}", *sorted(facts.flavors)],
        "model_name": facts.name,
        "mlteams": {
            "team": facts.team,
            "model": facts.model,
            "version": facts.version,
            "promotion_id": facts.promotion_id,
            "author": facts.author,
            "approver": facts.approver,
            "artifact_sha256": facts.artifact_sha256,
            "high_stakes": facts.high_stakes,
        },
    }
    if results and task:
        matter["model-index"] = [
            {
                "name": facts.name,
                "results": [
                    {
                        "task": {"type": task},
                        "dataset": {
                            "name": str(evaluation.get("uri", "")),
                            "type": "mlteams-evaluation",
                            "revision": str(evaluation.get("sha256", "")),
                        },
                        "metrics": results,
                    }
                ],
            }
        ]
    return matter


def render_card(facts: CardFacts) -> str:
    """The card's Markdown: YAML front matter, then the body."""
    evaluation = facts.evaluation or {}
    signature = facts.signature or {}
    body = _TEMPLATE.render(
        name=facts.name,
        version=facts.version,
        team=facts.team,
        model=facts.model,
        author=facts.author,
        created=facts.created.isoformat(timespec="seconds"),
        promotion_id=facts.promotion_id,
        approver=facts.approver or ("required" if facts.high_stakes else "not required"),
        intended_use=facts.human.get("intended_use"),
        out_of_scope_use=facts.human.get("out_of_scope_use"),
        limitations=facts.human.get("limitations"),
        evaluation_uri=evaluation.get("uri"),
        evaluation_sha=_code(evaluation.get("sha256")),
        task=evaluation.get("task"),
        metrics=[(k, f"{float(v):.4f}") for k, v in sorted(facts.metrics.items())],
        logged={k: f"{float(v):.4f}" for k, v in facts.logged_metrics.items()},
        gates=list(facts.gate_results),
        params=sorted(facts.params.items()),
        datasets=list(facts.dataset_inputs),
        git_commit=facts.git_commit,
        image=facts.image,
        profile=facts.profile,
        flavors=", ".join(facts.flavors) or None,
        artifact_sha256=facts.artifact_sha256,
        signature_inputs=signature.get("inputs"),
        signature_outputs=signature.get("outputs"),
        requirements=facts.requirements,
    )
    matter = yaml.safe_dump(_front_matter(facts), sort_keys=False, allow_unicode=True)
    return f"---\n{matter}---\n\n{body}"
